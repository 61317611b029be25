"""Open documents, kept in sync with the client, with fast position <-> offset conversion.

pygls's own workspace rebuilds a document's line list and walks it character by character on
every edit and every position lookup (Python loops over the whole file). On the keystroke
path that cost grows with the file, so the server keeps its own store: edits are string
slices, line starts are found with ``str.find`` (C speed) and only the cursor's line is ever
converted between code units and characters.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from lsprotocol import types as lsp

ENCODINGS = ("utf-16", "utf-8", "utf-32")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _units(text: str, encoding: str) -> int:
    """How many code units of ``encoding`` the client counts for ``text`` (at C speed: a 5 MB
    line is converted in milliseconds, not walked character by character)."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text.encode("utf-8", "surrogatepass"))


def _chars_for_units(line: str, units: int, encoding: str) -> int:
    """The str index in ``line`` that is ``units`` code units from its start (clamped; a
    position inside a character counts as its end)."""
    if encoding == "utf-32" or line.isascii():
        return min(units, len(line))
    if encoding == "utf-16":
        head = line.encode("utf-16-le", "surrogatepass")[: 2 * units]
        whole, cut = len(head.decode("utf-16-le", "ignore")), len(head) // 2
    else:
        head = line.encode("utf-8", "surrogatepass")[:units]
        whole, cut = len(head.decode("utf-8", "ignore")), len(head)
    return whole + 1 if _units(line[:whole], encoding) < cut else whole


@dataclass
class TextDocument:
    uri: str
    text: str
    version: int | None = None
    language_id: str = ""
    encoding: str = "utf-16"
    last_edit_line: int = 0
    _line_starts: list[int] | None = field(default=None, repr=False)

    @property
    def line_starts(self) -> list[int]:
        """Where each line starts; a line ends at \\n, \\r\\n or a lone \\r, as LSP says."""
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _LINE_BREAK.finditer(self.text))]
        return self._line_starts

    def _line(self, n: int) -> str:
        starts = self.line_starts
        end = starts[n + 1] if n + 1 < len(starts) else len(self.text)
        return self.text[starts[n] : end].rstrip("\r\n")

    def offset_at(self, position: lsp.Position) -> int:
        """The str index of ``position``; positions past a line's end clamp to it (as the spec says)."""
        starts = self.line_starts
        if position.line >= len(starts):
            return len(self.text)
        line = self._line(position.line)
        return starts[position.line] + _chars_for_units(line, position.character, self.encoding)

    def position_at(self, offset: int) -> lsp.Position:
        offset = max(0, min(offset, len(self.text)))
        starts = self.line_starts
        n = bisect_right(starts, offset) - 1
        column = _units(self.text[starts[n] : offset], self.encoding)
        return lsp.Position(line=n, character=column)

    def apply(self, change: lsp.TextDocumentContentChangeEvent) -> None:
        if isinstance(change, lsp.TextDocumentContentChangePartial):
            self.last_edit_line = change.range.start.line
            start = self.offset_at(change.range.start)
            end = self.offset_at(change.range.end)
            self.text = self.text[:start] + change.text + self.text[max(start, end) :]
        else:
            self.text = change.text
        self._line_starts = None


class DocumentStore:
    """The documents the client has open, by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, TextDocument] = {}
        self.encoding = "utf-16"

    def open(self, item: lsp.TextDocumentItem) -> TextDocument:
        doc = TextDocument(item.uri, item.text, item.version, item.language_id, self.encoding)
        self._docs[item.uri] = doc
        return doc

    def change(self, params: lsp.DidChangeTextDocumentParams) -> TextDocument | None:
        doc = self._docs.get(params.text_document.uri)
        if doc is None:
            return None
        for change in params.content_changes:
            doc.apply(change)
        doc.version = params.text_document.version
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> TextDocument | None:
        return self._docs.get(uri)

    def __len__(self) -> int:
        return len(self._docs)
