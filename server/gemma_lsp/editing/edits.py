"""The edit an editor applies, and the line handling that shapes new text into one.

Offsets are ``str`` indices, no LSP types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_BREAK = re.compile(r"[\r\n]")


@dataclass(frozen=True)
class Edit:
    """Replace ``document[start:end]`` with ``text``.

    The document after accepting is ``document[:start] + text + document[end:]``.
    """

    text: str
    start: int
    end: int


def rest_of_line(text: str, offset: int) -> str:
    """The text from ``offset`` to the end of its line, without the line break."""
    m = _LINE_BREAK.search(text, offset)
    return text[offset : m.start() if m else len(text)]


def split_lines(text: str) -> list[str]:
    """The lines of new text (model output); ``\\r\\n`` and ``\\r`` count as line breaks."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def drop_trailing_blank(lines: list[str]) -> list[str]:
    """``lines`` without the whitespace-only lines at the end."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def line_break_of(document: str) -> str:
    """The document's line break: ``\\r\\n`` when most of its lines end in it, else ``\\n``."""
    return "\r\n" if 2 * document.count("\r\n") > document.count("\n") else "\n"


def with_lf_line_breaks(document: str, offset: int) -> tuple[str, int] | None:
    """``document`` with ``\\r\\n`` as ``\\n``, and ``offset`` (within it) moved along; None when
    ``offset`` is between a ``\\r`` and its ``\\n`` (no client can name that position)."""
    if 0 < offset < len(document) and document[offset - 1] == "\r" and document[offset] == "\n":
        return None
    return document.replace("\r\n", "\n"), offset - document.count("\r\n", 0, offset)
