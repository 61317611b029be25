"""Memories over LSP: commands, the workspace index with progress, episodic memories, and the
retrieval hook of inline completion.

Commands (``workspace/executeCommand``), each taking one object argument:

- ``gemma.memory.remember`` ``{text? | uri + range, tier?, kind?, tags?, importance?}``
- ``gemma.memory.search`` ``{query, k?}``
- ``gemma.memory.forget`` ``{ids}``
- ``gemma.memory.stats`` (no argument)
- ``gemma.index.rebuild`` (no argument)
- ``gemma.completion.accepted`` ``{uri, text}``: sent by the client when the user accepts an
  inline completion (the items carry it as their ``command``); stored as an episodic memory.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pydantic import ValidationError
from pygls.exceptions import JsonRpcInvalidParams

from gemma_lsp.completion.context import Chunk
from gemma_lsp.memory import Kind, MemoryUnavailable, Tier
from gemma_lsp.memory.service import MemoryService

from .values import command_argument, selected_text
from .values import plain as _plain
from .server import GemmaLanguageServer

log = logging.getLogger(__name__)

REMEMBER = "gemma.memory.remember"
SEARCH = "gemma.memory.search"
FORGET = "gemma.memory.forget"
STATS = "gemma.memory.stats"
REBUILD = "gemma.index.rebuild"
ACCEPTED = "gemma.completion.accepted"


def _service(ls: GemmaLanguageServer) -> MemoryService:
    if ls.memory is None:
        raise JsonRpcInvalidParams("Memories are not available: the server has not been initialized.")
    return ls.memory


def start_memory(ls: GemmaLanguageServer, root_uri: str | None, folders: list | None) -> None:
    """Create the workspace's memory service (at initialize; nothing is read yet)."""
    root = None
    uri = root_uri or (folders[0].uri if folders else None)
    if uri and uri.startswith("file:"):
        root = Path(unquote(urlparse(uri).path))
    settings = ls.settings

    def degraded(message: str) -> None:
        ls.tell(message, lsp.MessageType.Warning)

    def recovered() -> None:
        ls.tell("Memories are back.", lsp.MessageType.Info)

    embedder = None
    if settings.memory.embedding_model is not None:
        from gemma_lsp.engine.embedder import GgufEmbedder
        from gemma_lsp.errors import ModelUnavailable

        try:
            embedder = GgufEmbedder(settings.memory.embedding_model)
        except ModelUnavailable as exc:
            ls.tell(f"{exc} Memories use lexical search only.", lsp.MessageType.Warning)
    ls.memory = MemoryService(
        settings.memory, settings.index, root, embedder=embedder, on_degraded=degraded, on_recovered=recovered
    )

    async def retriever(query: str, budget_tokens: int) -> list[Chunk]:
        pairs = await ls.memory.retrieve(query, budget_tokens)
        return [Chunk(path, text) for path, text in pairs]

    ls.completions.set_retriever(retriever)


async def load_and_index(ls: GemmaLanguageServer) -> None:
    """After initialized: build the search index from the store, then index the workspace with progress."""
    service = ls.memory
    if service is None:
        return
    try:
        await service.start()
        if ls.settings.index.enabled and service.indexer is not None:
            await index_with_progress(ls)
    except MemoryUnavailable as exc:
        ls.tell(f"Memories are unavailable: {exc}", lsp.MessageType.Warning)
    except Exception:  # the server keeps serving completions whatever the memory layer does
        log.exception("loading memories failed")


async def index_with_progress(ls: GemmaLanguageServer) -> dict[str, int]:
    service = _service(ls)
    token = f"gemma-lsp/index/{uuid.uuid4()}"
    progress = await ls.begin_progress(token, "Indexing the workspace")
    loop = asyncio.get_running_loop()

    def report(state) -> None:
        if progress and (state.files_done % 20 == 0 or state.files_done == state.files_total):
            pct = int(100 * state.files_done / max(1, state.files_total))
            message = f"{state.files_done}/{state.files_total} files, {state.chunks_written} chunks"
            loop.call_soon_threadsafe(
                ls.work_done_progress.report, token, lsp.WorkDoneProgressReport(message=message, percentage=pct)
            )

    state = await service.index_workspace(report)
    result = {"files": state.files_total, "chunks_written": state.chunks_written}
    if progress:
        ls.work_done_progress.end(
            token, lsp.WorkDoneProgressEnd(message=f"{state.files_total} files, {state.chunks_written} chunks written")
        )
    return result


def register(server: GemmaLanguageServer) -> None:
    @server.command(REMEMBER)
    async def remember(ls: GemmaLanguageServer, *args):
        arg = command_argument(args, REMEMBER)
        text = arg.get("text")
        source = None
        if arg.get("uri"):
            source = {"uri": arg["uri"], "range": _plain(arg.get("range"))}
        if not text and arg.get("uri") and arg.get("range"):
            text, _, _ = selected_text(ls.documents, REMEMBER, arg["uri"], arg["range"])
        if not text or not str(text).strip():
            raise JsonRpcInvalidParams(f"{REMEMBER} needs text, or a uri and a non-empty range to take it from.")
        try:
            memory = await _service(ls).remember(
                str(text),
                tier=arg.get("tier", Tier.long_term),
                kind=arg.get("kind", Kind.note),
                tags=arg.get("tags") or (),
                importance=arg.get("importance", 0.5),
                source=source,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "memory"
            raise JsonRpcInvalidParams(f"{REMEMBER}: {where}: {first['msg']}.") from None
        return {"id": memory.id, "tier": memory.tier.value, "kind": memory.kind.value}

    @server.command(SEARCH)
    async def search(ls: GemmaLanguageServer, *args):
        arg = command_argument(args, SEARCH)
        query = arg.get("query")
        if not isinstance(query, str) or not query.strip():
            raise JsonRpcInvalidParams(f"{SEARCH} needs a non-empty query.")
        k = arg.get("k", 5)
        if not isinstance(k, int) or not 1 <= k <= 100:
            raise JsonRpcInvalidParams(f"{SEARCH}: k must be an integer from 1 to 100, got {k!r}.")
        hits = await _service(ls).search(query, k=k)
        return [
            {
                "id": h.id,
                "text": h.memory.text,
                "score": round(h.score, 4),
                "tier": h.memory.tier.value,
                "kind": h.memory.kind.value,
                "tags": list(h.memory.tags),
                "source": h.memory.source.model_dump(mode="json") if h.memory.source else None,
            }
            for h in hits
        ]

    @server.command(FORGET)
    async def forget(ls: GemmaLanguageServer, *args):
        arg = command_argument(args, FORGET)
        ids = arg.get("ids")
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
            raise JsonRpcInvalidParams(f"{FORGET} needs ids: a list of memory ids.")
        return {"forgotten": await _service(ls).forget(ids)}

    @server.command(STATS)
    async def stats(ls: GemmaLanguageServer, *args):
        return await _service(ls).stats()

    @server.command(REBUILD)
    async def rebuild(ls: GemmaLanguageServer, *args):
        if _service(ls).indexer is None:
            raise JsonRpcInvalidParams(f"{REBUILD}: the client gave no workspace folder to index.")
        return await index_with_progress(ls)

    @server.command(ACCEPTED)
    async def accepted(ls: GemmaLanguageServer, *args):
        arg = command_argument(args, ACCEPTED)
        text = arg.get("text")
        if not isinstance(text, str) or not text.strip():
            return None
        source = {"uri": arg["uri"]} if isinstance(arg.get("uri"), str) else None
        await _service(ls).remember(text, tier=Tier.episodic, kind=Kind.accepted_completion, source=source)
        return None

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: GemmaLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        doc = ls.documents.get(params.text_document.uri)
        ls.note_file(params.text_document.uri, line=doc.last_edit_line if doc else 0)
        uri = params.text_document.uri
        if ls.memory is not None and uri.startswith("file:"):
            await ls.memory.file_changed(Path(unquote(urlparse(uri).path)))
