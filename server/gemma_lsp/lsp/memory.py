"""Memories over LSP: commands, the workspace index with progress, episodic memories.

The commands and their arguments are listed in ``gemma_lsp/protocol.py``. Accepted inline
completions come back through ``gemma.completion.accepted`` (the items carry it as their
command) and are stored as episodic memories; a saved file is indexed again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from lsprotocol import types as lsp
from pydantic import ValidationError
from pygls.exceptions import JsonRpcInvalidParams

from gemma_lsp import protocol
from gemma_lsp.app import Applied
from gemma_lsp.memory import Kind, MemoryUnavailable, Tier
from gemma_lsp.memory.secrets import SecretText
from gemma_lsp.memory.service import MemoryService
from gemma_lsp.uri import uri_to_path

from .feature import LanguageFeature, command
from .values import plain, selected_text

log = logging.getLogger(__name__)


class MemoryFeature(LanguageFeature):
    name = "memory"

    def _service(self) -> MemoryService:
        memory = self.services.memory
        if memory is None:
            raise JsonRpcInvalidParams("Memories are not available: the server has not been initialized.")
        return memory

    # ------------------------------------------------------------- lifecycle
    def initialized(self) -> None:
        self.server.background(self.load_and_index())

    async def settings_changed(self, applied: Applied) -> None:
        if applied.memory:
            self.server.background(self.load_and_index())

    def document_saved(self, uri: str) -> None:
        memory, path = self.services.memory, uri_to_path(uri)
        if memory is not None and path is not None:
            self.server.background(memory.file_changed(path))

    async def load_and_index(self) -> None:
        """Build the search index from the store, then index the workspace with progress."""
        service = self.services.memory
        if service is None:
            return
        try:
            await service.start()
            if self.server.settings.index.enabled and service.indexer is not None:
                await self.index_with_progress()
        except MemoryUnavailable as exc:
            self.server.tell(f"Memories are unavailable: {exc}", lsp.MessageType.Warning)
        except Exception:  # the server keeps serving completions whatever the memory layer does
            log.exception("loading memories failed")

    async def index_with_progress(self) -> dict[str, int]:
        server, service = self.server, self._service()
        token = f"gemma-lsp/index/{uuid.uuid4()}"
        progress = await server.begin_progress(token, "Indexing the workspace")
        loop = asyncio.get_running_loop()

        def report(state) -> None:
            if progress and (state.files_done % 20 == 0 or state.files_done == state.files_total):
                pct = int(100 * state.files_done / max(1, state.files_total))
                message = f"{state.files_done}/{state.files_total} files, {state.chunks_written} chunks"
                loop.call_soon_threadsafe(
                    server.work_done_progress.report, token, lsp.WorkDoneProgressReport(message=message, percentage=pct)
                )

        state = await service.index_workspace(report)
        result = {"files": state.files_total, "chunks_written": state.chunks_written,
                  "secrets_skipped": state.secrets_skipped}
        if progress:
            secrets = f", {state.secrets_skipped} secret files left out" if state.secrets_skipped else ""
            server.work_done_progress.end(
                token,
                lsp.WorkDoneProgressEnd(message=f"{state.files_total} files, {state.chunks_written} chunks written{secrets}"),
            )
        return result

    # -------------------------------------------------------------- commands
    @command(protocol.MEMORY_REMEMBER)
    async def remember(self, arg: dict) -> dict:
        name = protocol.MEMORY_REMEMBER
        text = arg.get("text")
        source = None
        if arg.get("uri"):
            source = {"uri": arg["uri"], "range": plain(arg.get("range"))}
        if not text and arg.get("uri") and arg.get("range"):
            text, _, _ = selected_text(self.server.documents, name, arg["uri"], arg["range"])
        if not text or not str(text).strip():
            raise JsonRpcInvalidParams(f"{name} needs text, or a uri and a non-empty range to take it from.")
        if len(text) > protocol.MAX_TEXT:
            raise JsonRpcInvalidParams(
                f"{name}: the range holds {len(text)} characters; a memory holds at most {protocol.MAX_TEXT}."
            )
        try:
            memory = await self._service().remember(
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
            raise JsonRpcInvalidParams(f"{name}: {where}: {first['msg']}.") from None
        except SecretText as exc:
            raise JsonRpcInvalidParams(f"{name}: {exc}.") from None
        return {"id": memory.id, "tier": memory.tier.value, "kind": memory.kind.value}

    @command(protocol.MEMORY_SEARCH)
    async def search(self, arg: dict) -> list[dict]:
        name = protocol.MEMORY_SEARCH
        query = arg.get("query")
        if not isinstance(query, str) or not query.strip():
            raise JsonRpcInvalidParams(f"{name} needs a non-empty query.")
        k = arg.get("k", 5)
        if not isinstance(k, int) or not 1 <= k <= 100:
            raise JsonRpcInvalidParams(f"{name}: k must be an integer from 1 to 100, got {k!r}.")
        hits = await self._service().search(query, k=k)
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

    @command(protocol.MEMORY_FORGET)
    async def forget(self, arg: dict) -> dict:
        ids = arg.get("ids")
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
            raise JsonRpcInvalidParams(f"{protocol.MEMORY_FORGET} needs ids: a list of memory ids.")
        return {"forgotten": await self._service().forget(ids)}

    @command(protocol.MEMORY_STATS)
    async def stats(self, arg: dict) -> dict:
        return await self._service().stats()

    @command(protocol.INDEX_REBUILD)
    async def rebuild(self, arg: dict) -> dict:
        if self._service().indexer is None:
            raise JsonRpcInvalidParams(f"{protocol.INDEX_REBUILD}: the client gave no workspace folder to index.")
        return await self.index_with_progress()

    @command(protocol.COMPLETION_ACCEPTED)
    async def accepted(self, arg: dict) -> None:
        text = arg.get("text")
        if not isinstance(text, str) or not text.strip():
            return None
        source = {"uri": arg["uri"]} if isinstance(arg.get("uri"), str) else None
        try:
            await self._service().remember(text, tier=Tier.episodic, kind=Kind.accepted_completion, source=source)
        except SecretText:
            log.info("an accepted completion was not kept: it looks like it holds a secret")
        return None
