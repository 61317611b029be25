"""Inline completion (LSP 3.18 ``textDocument/inlineCompletion``) and the ``textDocument/completion``
fallback, and the open documents' part in the completion's extra context.

A request that cannot be served gets an empty answer, and the reason reaches the user once.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcRequestCancelled

from gemma_lsp import protocol
from gemma_lsp.completion import Suggestion
from gemma_lsp.errors import Cancelled, ModelUnavailable

from .feature import LanguageFeature, request

log = logging.getLogger(__name__)


class CompletionFeature(LanguageFeature):
    name = "completion"

    def __init__(self, server) -> None:
        super().__init__(server)
        self.last_completed_uri: str | None = None

    # ------------------------------------------------------------- documents
    def note_file(self, uri: str, line: int, prefetch: bool = True) -> None:
        """Offer a chunk of an open document to the completion's extra context."""
        doc = self.server.documents.get(uri)
        path = self.server.display_path(uri)
        if doc is not None and path is not None:
            self.services.completions.note_file(path, doc.text, line, prefetch)

    def document_opened(self, uri: str) -> None:
        self.note_file(uri, line=0)

    def document_saved(self, uri: str) -> None:
        doc = self.server.documents.get(uri)
        self.note_file(uri, line=doc.last_edit_line if doc else 0)

    def document_closed(self, uri: str) -> None:
        self.services.completions.forget(uri)

    # -------------------------------------------------------------- requests
    @request(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
    async def inline_completion(self, params: lsp.InlineCompletionParams) -> lsp.InlineCompletionList:
        found = await self._suggest(params.text_document.uri, params.position)
        if found is None:
            return lsp.InlineCompletionList(items=[])
        suggestion, rng = found
        accepted = lsp.Command(
            title="gemma-lsp: remember the accepted completion",
            command=protocol.COMPLETION_ACCEPTED,
            arguments=[{"uri": params.text_document.uri, "text": suggestion.text}],
        )
        return lsp.InlineCompletionList(
            items=[lsp.InlineCompletionItem(insert_text=suggestion.text, range=rng, command=accepted)]
        )

    @request(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "(", "[", ","]))
    async def completion(self, params: lsp.CompletionParams) -> lsp.CompletionList:
        found = await self._suggest(params.text_document.uri, params.position)
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

    def _changed(self, uri: str, document, text: str) -> str | None:
        """Why an answer computed for ``text`` no longer fits the document, or None."""
        if self.server.documents.get(uri) is not document or document.text is not text:
            return "the document changed; a newer request will follow"
        return None

    async def _suggest(self, uri: str, position: lsp.Position) -> tuple[Suggestion, lsp.Range] | None:
        documents = self.server.documents
        document = documents.get(uri)
        if document is None:
            log.warning("completion asked for %s, which is not open", uri)
            return None
        if self.last_completed_uri not in (None, uri):
            # The user moved to another file: what they just worked on becomes extra context.
            left = documents.get(self.last_completed_uri)
            if left is not None:
                self.note_file(self.last_completed_uri, line=left.last_edit_line, prefetch=False)
        self.last_completed_uri = uri
        text = document.text
        received = self.server.protocol.text_when_received()
        if received is not None and received is not text:
            # An edit was read after this request arrived: its position refers to the old text.
            raise JsonRpcRequestCancelled("the document changed; a newer request will follow")
        offset = document.offset_at(position)
        try:
            suggestion = await self.services.completions.suggest(
                uri, text, offset, path=self.server.display_path(uri), language=document.language_id
            )
        except asyncio.CancelledError:
            raise  # $/cancelRequest: pygls answers RequestCancelled
        except Cancelled:
            # Overtaken by a newer request for this document: a stale result is never delivered.
            raise JsonRpcRequestCancelled("superseded by a newer request") from None
        except ModelUnavailable as exc:
            self.server.report_unavailable(exc)
            return None
        if (reason := self._changed(uri, document, text)) is not None:
            raise JsonRpcRequestCancelled(reason) from None
        # An edit can still be read between here and the moment the answer is written: the
        # check runs again then (a stale range would put the text in the wrong place).
        self.server.protocol.guard(lambda: self._changed(uri, document, text))
        if suggestion is None:
            return None
        start = document.position_at(suggestion.start)
        end = document.position_at(suggestion.end)
        return suggestion, lsp.Range(start=start, end=end)
