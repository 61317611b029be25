"""LSP features: lifecycle, configuration, inline completion, completion, stats.

Handlers translate between LSP types and the domain calls; errors from one request never
take the server down: a request that cannot be served gets an empty answer, and the reason
reaches the user once as a message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from lsprotocol import types as lsp
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcRequestCancelled

from gemma_lsp.completion import Suggestion
from gemma_lsp.errors import Cancelled, ModelUnavailable

from . import memory, prompts
from .server import GemmaLanguageServer

log = logging.getLogger(__name__)

STATS_METHOD = "gemma/stats"


def register(server: GemmaLanguageServer) -> None:
    memory.register(server)
    prompts.register(server)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: GemmaLanguageServer, params: lsp.InitializeParams) -> None:
        # The same choice pygls advertises in the initialize answer.
        encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
        ls.documents.encoding = str(getattr(encoding, "value", encoding))
        ls.set_root(params.root_uri, params.root_path)
        ls.initial_settings(params.initialization_options)
        memory.start_memory(ls, params.root_uri, params.workspace_folders)

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: GemmaLanguageServer, params: lsp.InitializedParams) -> None:
        # The initialize answer never waits for the model: it loads now, in the background.
        ls.start_loading()
        ls.background(memory.load_and_index(ls))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: GemmaLanguageServer, params: lsp.DidChangeConfigurationParams) -> None:
        await ls.change_settings(params.settings)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GemmaLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.note_file(params.text_document.uri, line=0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GemmaLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.completions.forget(params.text_document.uri)

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: GemmaLanguageServer, params: Any) -> None:
        await ls.engine.close()
        if ls.memory is not None:
            await ls.memory.close()

    @server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
    async def inline_completion(
        ls: GemmaLanguageServer, params: lsp.InlineCompletionParams
    ) -> lsp.InlineCompletionList | None:
        found = await _suggest(ls, params.text_document.uri, params.position)
        if found is None:
            return lsp.InlineCompletionList(items=[])
        suggestion, rng = found
        accepted = lsp.Command(
            title="gemma-lsp: remember the accepted completion",
            command=memory.ACCEPTED,
            arguments=[{"uri": params.text_document.uri, "text": suggestion.text}],
        )
        return lsp.InlineCompletionList(
            items=[lsp.InlineCompletionItem(insert_text=suggestion.text, range=rng, command=accepted)]
        )

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "(", "[", ","]))
    async def completion(ls: GemmaLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        found = await _suggest(ls, params.text_document.uri, params.position)
        if found is None:
            return lsp.CompletionList(is_incomplete=True, items=[])
        suggestion, rng = found
        first_line = suggestion.text.strip().splitlines()[0]
        item = lsp.CompletionItem(
            label=first_line[:60] + ("…" if len(first_line) > 60 else ""),
            kind=lsp.CompletionItemKind.Text,
            detail="gemma-lsp",
            documentation=suggestion.text,
            insert_text_format=lsp.InsertTextFormat.PlainText,
            text_edit=lsp.TextEdit(range=rng, new_text=suggestion.text),
            sort_text="0",
            preselect=True,
        )
        # Incomplete: the client asks again as the user types, so the suggestion stays fresh.
        return lsp.CompletionList(is_incomplete=True, items=[item])

    @server.feature(STATS_METHOD)
    def stats(ls: GemmaLanguageServer, params: Any) -> dict[str, Any]:
        """Engine counters and the last request's figures (used by tests and benchmarks)."""
        info = ls.engine.info
        return {
            "loaded": ls.engine.loaded,
            "model": dataclasses.asdict(info) if info else None,
            "load_error": ls.engine.load_error,
            **dataclasses.asdict(ls.engine.stats),
            "completion": dataclasses.asdict(ls.completions.stats),
        }


async def _suggest(
    ls: GemmaLanguageServer, uri: str, position: lsp.Position
) -> tuple[Suggestion, lsp.Range] | None:
    document = ls.documents.get(uri)
    if document is None:
        log.warning("completion asked for %s, which is not open", uri)
        return None
    if ls.last_completed_uri not in (None, uri):
        # The user moved to another file: what they just worked on becomes extra context.
        left = ls.documents.get(ls.last_completed_uri)
        if left is not None:
            ls.note_file(ls.last_completed_uri, line=left.last_edit_line, prefetch=False)
    ls.last_completed_uri = uri
    text = document.text
    offset = document.offset_at(position)
    try:
        suggestion = await ls.completions.suggest(
            uri, text, offset, path=ls.display_path(uri), language=document.language_id
        )
    except asyncio.CancelledError:
        raise  # $/cancelRequest: pygls answers RequestCancelled
    except Cancelled:
        # Overtaken by a newer request for this document: a stale result is never delivered.
        raise JsonRpcRequestCancelled("superseded by a newer request") from None
    except ModelUnavailable as exc:
        ls.report_unavailable(exc)
        return None
    if ls.documents.get(uri) is not document or document.text is not text:
        # The document changed while the model worked: the answer would land in the wrong place.
        raise JsonRpcRequestCancelled("the document changed; a newer request will follow") from None
    if suggestion is None:
        return None
    start = document.position_at(suggestion.start)
    end = document.position_at(suggestion.end)
    return suggestion, lsp.Range(start=start, end=end)

