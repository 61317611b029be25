"""Shaping a model's answer into the code that replaces a selection.

The model answers in Markdown: code in a fence, often with a sentence around it, indented from
column 0 whatever the selection's indentation was, with spaces in a file of tabs. ``shape_code``
takes the code out, indents it where the selection sits in the document's own style, and keeps
the selection's surrounding blank lines and final line break, so the edit that follows touches
only what the model changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gemma_lsp.editing.edits import drop_trailing_blank, line_break_of, split_lines
from gemma_lsp.editing.indentation import IndentStyle, detect_style, indent_width, indentation_of, restyle
from gemma_lsp.languages import language_by_id

_OPENING = re.compile(r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")
# info strings models write that the language table does not list
_ALIASES = {
    "python": {"py3", "python3"},
    "go": {"golang"},
    "shellscript": {"bash", "shell", "zsh"},
    "javascript": {"node"},
    "cpp": {"c++"},
    "csharp": {"c#", "cs"},
}


@dataclass(frozen=True)
class FencedBlock:
    """One fenced block of an answer: its info string's first word and its lines."""

    info: str
    lines: list[str]


def shape_code(answer: str, selection: str, document: str, start: int, end: int, language: str) -> str | None:
    """The code that replaces ``selection`` (``document[start:end]``), shaped from the model's
    ``answer``; None when nothing usable is left: no code, or the selection itself again (line
    ends' whitespace aside). ``language`` is the document's LSP languageId.

    Raises ValueError when ``selection`` is not ``document[start:end]`` (a stale document)."""
    if document[start:end] != selection:
        raise ValueError(f"The selection is not the document's text at [{start}, {end}): the document changed.")
    lines = _trimmed(code_of(answer, language))
    if not lines:
        return None
    lead, content, trail = _parts(selection)
    at = start + len(lead)  # where the selection's first line with text begins in the document
    line_start = document.rfind("\n", 0, at) + 1
    line_end = document.find("\n", at)
    base = indentation_of(document[line_start : line_end if line_end >= 0 else len(document)])
    prefix = document[line_start:at]  # the part of that line before the selection
    style = detect_style(document, start, language_by_id(language))
    body = _indented(lines, base, prefix, split_lines(content) if content else [], style)
    replacement = lead + line_break_of(document).join(body) + trail
    if [line.rstrip() for line in split_lines(replacement)] == [line.rstrip() for line in split_lines(selection)]:
        return None
    return replacement


def code_of(answer: str, language: str) -> list[str]:
    """The code lines of an answer: the fenced block tagged with ``language`` (a languageId),
    else the first fenced block, else the whole answer. A fence the answer never closes runs to
    its end (the model ran out of tokens)."""
    blocks = fenced_blocks(answer)
    if not blocks:
        return split_lines(answer)
    names = _names(language)
    return next((block.lines for block in blocks if block.info in names), blocks[0].lines)


def fenced_blocks(answer: str) -> list[FencedBlock]:
    """The fenced code blocks of a Markdown answer (``` or ~~~), in order."""
    blocks: list[FencedBlock] = []
    lines = split_lines(answer)
    i = 0
    while i < len(lines):
        m = _OPENING.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            line = lines[i]
            body.append(line[min(indent, len(indentation_of(line))) :])  # the fence's own indentation
            i += 1
        blocks.append(FencedBlock(m["info"].lower(), body))
        i += 1
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]} and len(indentation_of(line)) <= 3


def _names(language: str) -> set[str]:
    """The info strings that name ``language`` in a fence."""
    names = {language.lower()} | _ALIASES.get(language, set())
    known = language_by_id(language)
    if known is not None:
        names |= {known.fence, *(suffix[1:] for suffix in known.suffixes)}
    return names


def _trimmed(lines: list[str]) -> list[str]:
    """``lines`` without whitespace at line ends and without blank lines at both ends."""
    lines = drop_trailing_blank([line.rstrip() for line in lines])
    while lines and not lines[0]:
        lines = lines[1:]
    return lines


def _parts(selection: str) -> tuple[str, str, str]:
    """(leading blank lines, text, trailing whitespace) of the selection: the replacement keeps
    the first and the last as they are."""
    stripped = selection.rstrip()
    if not stripped:
        return "", "", selection[len(selection.rstrip("\r\n")) :]
    first = len(selection) - len(selection.lstrip())
    lead_end = selection.rfind("\n", 0, first) + 1
    return selection[:lead_end], stripped[lead_end:], selection[len(stripped) :]


def _indented(lines: list[str], base: str, prefix: str, selected: list[str], style: IndentStyle) -> list[str]:
    """``lines`` indented under ``base`` (the indentation of the selection's first line), in the
    document's ``style``; the first line without ``prefix``, the part of its line before the
    selection."""
    lines = restyle(lines, style, first_line_indented=True)
    if style.char is None:  # the document shows no indentation: keep the answer's character
        style = IndentStyle("\t" if any(indentation_of(line).startswith("\t") for line in lines) else " ", 4)
    widths = [indent_width(indentation_of(line)) if line else None for line in lines]
    widths[0] = _first_width(widths, indent_width(base), prefix, selected)
    floor = min(w for w in widths if w is not None)
    out = [base + style.make(w - floor) + line.lstrip(" \t") if line else "" for line, w in zip(lines, widths)]
    if prefix.strip():  # the selection starts after code on its line: its first line is a fragment
        out[0] = lines[0].lstrip(" \t")
    elif prefix:
        out[0] = out[0][len(prefix) :] if out[0].startswith(prefix) else out[0].lstrip(" \t")
    return out


def _first_width(widths: list[int | None], base: int, prefix: str, selected: list[str]) -> int:
    """The column the answer's first line stands for.

    When the selection starts inside its first line, that line reached the model without its
    indentation: the model may answer in the selection's own shape (first line at column 0, the
    others at the document's columns) or re-indent everything from column 0. The reading whose
    step from the first line to the others is closer to the selection's own step wins."""
    first = widths[0]
    assert first is not None  # the answer's first line has text
    others = [w for w in widths[1:] if w is not None]
    selected_others = [indent_width(indentation_of(line)) for line in selected[1:] if line.strip()]
    if not prefix or not others or not selected_others:
        return first
    own = indent_width(indentation_of(selected[0]))
    shifted = first + base - own  # read in the document's columns
    step = min(selected_others) - base
    return min((first, shifted), key=lambda column: abs(min(others) - column - step))
