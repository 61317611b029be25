"""Indentation: a document's style (tabs or spaces, columns per level), widths, and text
restyled to the document's style."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gemma_lsp.languages import Language

TAB_COLUMNS = 4  # a tab's width when indentation widths are compared
_STYLE_WINDOW = 8_000  # characters either side of the offset that decide the style


@dataclass(frozen=True)
class IndentStyle:
    """The document's indentation: ``char`` is "\\t", " ", or None when it shows none."""

    char: str | None
    unit: int  # columns per level

    def make(self, columns: int) -> str:
        """Indentation ``columns`` wide in this style."""
        if self.char == "\t":
            return "\t" * (columns // TAB_COLUMNS) + " " * (columns % TAB_COLUMNS)
        return " " * columns


def indentation_of(line: str) -> str:
    """The line's leading tabs and spaces."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def indent_width(ws: str) -> int:
    """Columns of the whitespace ``ws``, a tab counting ``TAB_COLUMNS``."""
    return sum(TAB_COLUMNS if c == "\t" else 1 for c in ws)


def detect_style(doc: str, offset: int, language: Language | None) -> IndentStyle:
    """Tabs or spaces by majority of indented lines around ``offset``; the space unit is the
    most common step between consecutive indentations. No evidence: tabs for a language whose
    convention is tabs (Go: gofmt enforces them), else unknown."""
    lines = doc[max(0, offset - _STYLE_WINDOW) : offset + _STYLE_WINDOW].split("\n")
    indents = [indentation_of(line) for line in lines if line.strip()]
    tabs = sum(1 for ws in indents if ws.startswith("\t"))
    spaces = sum(1 for ws in indents if ws.startswith("  "))
    if tabs > spaces or (not spaces and language is not None and language.indent == "\t"):
        return IndentStyle("\t", TAB_COLUMNS)
    if not spaces:
        return IndentStyle(None, 4)
    widths = [len(ws) for ws in indents if "\t" not in ws]
    steps = Counter(b - a for a, b in zip(widths, widths[1:]) if 0 < b - a <= 8)
    unit = min(steps, key=lambda s: (-steps[s], s)) if steps else 4
    return IndentStyle(" ", unit)


def restyle(lines: list[str], style: IndentStyle, *, first_line_indented: bool) -> list[str]:
    """``lines`` of new text indented with the document's character.

    Peers paste the model's spaces into a tab-indented Go file (or tabs into a space-indented
    one), and the editor shows a ragged block that gofmt or the linter rewrites. A tab becomes
    one document level; spaces become tabs at the text's own space unit (4, or 2 when all its
    indentations are even but not multiples of 4), leftover columns stay spaces. The first
    line's leading whitespace is indentation only when it starts at a line start
    (``first_line_indented``); otherwise it is left as it is."""
    if style.char is None:
        return lines
    first = 0 if first_line_indented else 1
    unit = _space_unit(lines[first:])
    out = lines[:first]
    for line in lines[first:]:
        ws = indentation_of(line)
        out.append(_restyled(ws, style, unit) + line[len(ws) :])
    return out


def _space_unit(lines: list[str]) -> int:
    widths = [len(ws) for ws in map(indentation_of, lines) if ws and "\t" not in ws]
    if not widths or all(w % 4 == 0 for w in widths):
        return 4
    return 2 if all(w % 2 == 0 for w in widths) else 4


def _restyled(ws: str, style: IndentStyle, space_unit: int) -> str:
    if style.char == " " and "\t" in ws:
        return ws.replace("\t", " " * style.unit)
    if style.char == "\t" and " " in ws:
        levels, rest = divmod(sum(space_unit if c == "\t" else 1 for c in ws), space_unit)
        return "\t" * levels + " " * rest
    return ws
