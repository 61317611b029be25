"""How much to generate at the cursor, and what of a generation cut short is whole.

First line first: with text typed on the cursor's line (or text right of it), the suggestion is
the rest of that line, so generation stops at its end; every token more is latency the user
waits for and text the post-processing throws away. A multi-line suggestion is offered only
where a block body starts: a blank line below a block opener (``def f():``, ``{``), directly or
below a docstring or comment that is all the body has so far.

A generation stopped by the time limit ends wherever the clock ran out, often in the middle of a
word (``getsockbyna``). Such a fragment is never shown: only the complete lines of a multi-line
answer, or the complete words of a one-line answer, are kept. (The token limit is the user's own
cap on a suggestion's length, and its answer is kept as it is.)
"""

from __future__ import annotations

import re

from gemma_lsp.editing.lexing import code_part, opens_block, syntax_for
from gemma_lsp.languages import language_by_id

_PARTIAL_WORD = re.compile(r"[\w$]+\Z")
_DOCSTRING_QUOTES = ('"""', "'''")


def suggestion_lines(document: str, offset: int, language: str, max_lines: int) -> int:
    """1, or ``max_lines`` where a block body starts at the cursor."""
    line_start = document.rfind("\n", 0, offset) + 1
    line_end = document.find("\n", offset)
    line_end = len(document) if line_end < 0 else line_end
    if document[line_start:line_end].strip():
        return 1  # typed text on the line, or text right of the cursor: the rest of this line
    syntax = syntax_for(language_by_id(language))
    above = document[:line_start].rstrip("\n").split("\n")[-40:]
    lines = [line for line in above if line.strip()]
    if not lines:
        return max_lines  # an empty file: anything goes
    if opens_block(lines[-1], syntax):
        return max_lines
    # A body that holds only a docstring or comments so far is still empty.
    i = len(lines) - 1
    in_docstring = False
    while i >= 0:
        stripped = lines[i].strip()
        quotes = stripped[:3] if stripped[:3] in _DOCSTRING_QUOTES else stripped[-3:]
        if quotes in _DOCSTRING_QUOTES and syntax.python:
            single_line = len(stripped) >= 6 and stripped.startswith(quotes) and stripped.endswith(quotes)
            if not single_line:
                in_docstring = not in_docstring
        elif not in_docstring and code_part(lines[i], syntax).strip():
            return max_lines if opens_block(lines[i], syntax) else 1
        i -= 1
    return 1


def whole_part(raw: str, stop_reason: str, lines: int) -> str:
    """``raw`` without the unfinished end the time limit left (the whole of it otherwise)."""
    if stop_reason != "time_limit":
        return raw
    if lines > 1 and "\n" in raw.rstrip("\n"):
        return raw[: raw.rstrip("\n").rfind("\n")]
    return _PARTIAL_WORD.sub("", raw)
