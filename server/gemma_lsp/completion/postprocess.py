"""Post-processing: the model's raw text at a cursor -> the edit an editor applies, or None.

A fill-in-the-middle model sees the text after the cursor, and its raw output still repeats
it, closes brackets the document already closes, runs on past the end of the block, indents
with the wrong character, and ends in whitespace or newlines. Editors show the raw text as
ghost text and apply it verbatim, so each of these slips costs the user a deletion. This
module turns raw text into an :class:`Edit` that is safe to accept, or into nothing.

Pure Python on the shared pieces of :mod:`gemma_lsp.editing` (lexer, indentation, ``Edit``);
offsets are ``str`` indices, no LSP types.

The range rule
--------------
An edit starts at the cursor (``start == offset``) and replaces nothing but the
whitespace-only rest of the cursor's line: ``end`` is the cursor, or the end of that line
(before its line break) when only whitespace lies between. Text right of the cursor that the
suggestion repeats (``foo(|)`` with raw ``a, b)``) is *trimmed from the suggestion*, never
covered by the range. Hence:

* accepting removes nothing but that blank rest of the line, so nothing the user typed
  before or after the cursor is lost, and nothing right of the cursor is doubled;
* a range that begins at the cursor is what clients expect when they match text typed ahead
  against the start of the suggestion: after typing ``k`` of its characters, the same edit
  shifted by ``k`` still produces the same document.

The cost of the rule: inserted text never ends in whitespace, so in ``foo(|a)`` a suggestion
``b, a)`` becomes ``b,`` (the space before ``a`` cannot be inserted without covering ``a``).

The rules, in the order they run
--------------------------------
1. Mode (:func:`completion_mode`): non-whitespace right of the cursor means *single-line*
   (only the raw text's first line is used); otherwise *multi-line*, up to ``max_lines``.
2. A suggestion that restarts the word being typed (``retu|`` + ``return x``) loses the
   repeated part.
3. Trailing whitespace goes from every line; the model's own trailing newlines go too.
4. Multi-line: indentation is converted to the document's style (tabs or spaces), an
   indentation the model repeats on top of the cursor's is dropped, and a block body the model
   left at the header's level is indented one level.
5. Multi-line: the suggestion stops where it leaves the cursor's block (a line indented less
   than the block), or where it closes a bracket (or string) the prefix did not open or the
   suffix already closes.
6. Multi-line: a tail that repeats the lines below the cursor, fully or as a partial line,
   is dropped, and so is everything from a line that runs into the next line below.
7. Single-line: a tail that repeats the text right of the cursor is trimmed, an unmatched
   closer or quote cuts the suggestion, and a string or bracket the suggestion opened and the
   line leaves open is closed -- whichever variant leaves the fewest bracket and quote
   problems in the text after the cursor.
8. Nothing but whitespace left, or only a repeat of what follows the cursor: None.

Line breaks: ``\\r\\n`` documents are processed as ``\\n`` and the inserted text gets the
document's line break back. The position between ``\\r`` and ``\\n`` is not a cursor
position (no client can name it): None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gemma_lsp.editing.edits import (
    Edit,
    drop_trailing_blank,
    line_break_of,
    rest_of_line,
    split_lines,
    with_lf_line_breaks,
)
from gemma_lsp.editing.indentation import IndentStyle, detect_style, indent_width, indentation_of, restyle
from gemma_lsp.editing.lexing import (
    CLOSER,
    OPENER,
    Lex,
    Syntax,
    opens_block,
    pop_matching,
    scan,
    state_at,
    syntax_for,
    word_tail,
)
from gemma_lsp.languages import language_by_id

__all__ = ["MULTI_LINE", "SINGLE_LINE", "Edit", "completion_mode", "postprocess"]

SINGLE_LINE = "single_line"
MULTI_LINE = "multi_line"

_SUFFIX_WINDOW = 6_000  # characters after the cursor scanned for the closers it provides
_SIMULATION_WINDOW = 2_000  # characters after the cursor replayed to score a single-line edit
_BELOW_LINES = 40

_PY_CONTINUATIONS = frozenset({"else", "elif", "except", "finally"})
_WORD_HEAD = re.compile(r"[\w$]+")
_WORD_CHAR = re.compile(r"[\w$]")


def completion_mode(document: str, offset: int) -> str:
    """``"single_line"`` when non-whitespace text is right of the cursor on its line, else
    ``"multi_line"``.

    Text right of the cursor means the user is editing inside a line: a multi-line suggestion
    there would split the line and push its rest below the inserted block.
    """
    offset = max(0, min(offset, len(document)))
    return SINGLE_LINE if rest_of_line(document, offset).strip() else MULTI_LINE


def postprocess(
    raw: str, document: str, offset: int, *, language: str = "", max_lines: int | None = None
) -> Edit | None:
    """The edit to offer for the model's ``raw`` text at ``offset`` in ``document``, or None.

    ``language`` is an LSP languageId ("python", "typescript", "go", "rust", ... or "" when
    unknown); it picks comment and string syntax and Python's indentation-based blocks.
    ``max_lines`` limits a multi-line suggestion (a leading line break does not count).
    """
    ctx = _Context.build(document, offset, language)
    if ctx is None:
        return None
    lines = split_lines(raw)
    if ctx.mode == SINGLE_LINE:
        text = _single_line(lines[0], ctx)
    else:
        text = _multi_line(lines, ctx, max_lines)
    return _finish(text, ctx)


# --------------------------------------------------------------------------------------------
# The cursor's context.


@dataclass(frozen=True)
class _Context:
    """Everything the rules read about the document, computed once (``\\r\\n`` -> ``\\n``)."""

    doc: str
    offset: int  # the cursor in ``doc``
    origin: int  # the cursor in the caller's document
    eol: str  # the document's line break
    syntax: Syntax
    mode: str
    line_before: str  # the cursor's line up to the cursor
    line_after: str  # the cursor's line from the cursor, without the line break
    prev_line: str | None  # the nearest non-blank line above the cursor's line
    below: tuple[str, ...]  # the lines after the cursor's line
    lex: Lex  # lexer state at the cursor; copy before scanning
    stack: tuple[str, ...]  # brackets open at the cursor
    consumed: tuple[bool, ...]  # per open bracket: the suffix closes it
    string_closed: bool  # the cursor is in a string and the suffix closes it
    style: IndentStyle

    @classmethod
    def build(cls, document: str, offset: int, language_id: str) -> _Context | None:
        offset = max(0, min(offset, len(document)))
        unified = with_lf_line_breaks(document, offset)
        if unified is None:
            return None
        doc, off = unified
        language = language_by_id(language_id)
        syntax = syntax_for(language)
        line_start = max(doc.rfind("\n", 0, off), doc.rfind("\r", 0, off)) + 1
        line_after = rest_of_line(doc, off)
        lex, stack = state_at(doc, off, syntax)
        consumed, string_closed = _closed_by_suffix(doc[off : off + _SUFFIX_WINDOW], lex, stack, syntax)
        return cls(
            doc=doc,
            offset=off,
            origin=offset,
            eol=line_break_of(document),
            syntax=syntax,
            mode=SINGLE_LINE if line_after.strip() else MULTI_LINE,
            line_before=doc[line_start:off],
            line_after=line_after,
            prev_line=_prev_nonblank_line(doc, line_start),
            below=_lines_below(doc, off + len(line_after)),
            lex=lex,
            stack=tuple(stack),
            consumed=consumed,
            string_closed=string_closed,
            style=detect_style(doc, off, language),
        )

    @property
    def suffix_window(self) -> str:
        end = self.doc.find("\n", self.offset + _SIMULATION_WINDOW, self.offset + 2 * _SIMULATION_WINDOW)
        # Whole lines, unless a line is longer than the window: then the window, never the line.
        return self.doc[self.offset : end if end >= 0 else self.offset + 2 * _SIMULATION_WINDOW]


def _lines_below(doc: str, line_end: int) -> tuple[str, ...]:
    window = doc[line_end + 1 : line_end + 1 + _SUFFIX_WINDOW] if line_end < len(doc) else ""
    return tuple(window.split("\n", _BELOW_LINES)[:_BELOW_LINES]) if window else ()


def _prev_nonblank_line(doc: str, line_start: int) -> str | None:
    end = line_start - 1
    while end > 0:
        start = doc.rfind("\n", 0, end) + 1
        if doc[start:end].strip():
            return doc[start:end]
        end = start - 1
    return None


def _closed_by_suffix(
    suffix: str, lex: Lex, stack: list[str], syntax: Syntax
) -> tuple[tuple[bool, ...], bool]:
    """Which open brackets the text after the cursor closes, and whether it closes the string
    the cursor is in. A suffix closer closes the nearest matching open bracket below it."""
    lex = lex.copy()
    consumed = [False] * len(stack)
    open_idx = list(range(len(stack)))
    own: list[str] = []
    string_closed = None if lex.in_string else False
    for _, kind, tok in scan(suffix, lex, syntax):
        if string_closed is None:
            string_closed = kind == "str_close"
        if kind == "open":
            own.append(tok)
        elif kind == "close" and own:
            pop_matching(own, tok)
        elif kind == "close":
            hits = [p for p, j in enumerate(open_idx) if stack[j] == OPENER[tok]]
            if hits:
                consumed[open_idx[hits[-1]]] = True
                del open_idx[hits[-1] :]
    return tuple(consumed), bool(string_closed)


# --------------------------------------------------------------------------------------------
# Rules shared by both modes.


def _drop_restarted_word(first: str, ctx: _Context) -> str:
    """Drop the word fragment before the cursor when the suggestion starts by retyping it.

    Peers insert ``return x`` at ``retu|`` and the user gets ``retureturn x``. Applied only when
    the suggestion's first word is longer than the fragment and starts with it, and no word
    character follows the cursor (then the fragment is part of a longer word)."""
    fragment = word_tail(ctx.line_before)
    if not fragment or _WORD_CHAR.match(ctx.line_after[:1]):
        return first
    head = _WORD_HEAD.match(first)
    if head and len(head.group()) > len(fragment) and head.group().startswith(fragment):
        return first[len(fragment) :]
    return first


def _finish(text: str, ctx: _Context) -> Edit | None:
    """Whitespace-only text is no suggestion. The range covers the blank rest of the line so
    accepting leaves no stray whitespace after the insert; line breaks follow the document."""
    if not text.strip():
        return None
    blank_rest = len(ctx.line_after) if not ctx.line_after.strip() else 0
    return Edit(text.replace("\n", ctx.eol), ctx.origin, ctx.origin + blank_rest)


# --------------------------------------------------------------------------------------------
# Single-line mode.


@dataclass(frozen=True)
class _Outcome:
    strays: int  # closers with nothing (or the wrong thing) to close
    broken: int  # one-line strings a line break left unterminated
    depth: int  # brackets still open at the end of the window
    open_at_end: bool  # the window ends inside a string or block comment


def _single_line(first: str, ctx: _Context) -> str:
    """The best single-line variant of the raw first line (rule 7)."""
    text = _drop_restarted_word(first, ctx).rstrip()
    if not text.strip() or ctx.line_after.startswith(text):
        return ""  # nothing, or only a repeat of what follows the cursor
    baseline = _simulate("", ctx)
    best = min(_line_variants(text, ctx), key=lambda v: _problems(_simulate(v, ctx), baseline))
    return best.rstrip()


def _line_variants(text: str, ctx: _Context) -> list[str]:
    """Candidates in order of preference (ties go to the earliest): the text without each tail
    that repeats the start of the rest of the line (longest first), the text, the text with the
    string and brackets it opened closed, the text cut before each closer or quote (longest
    first)."""
    after = ctx.line_after
    overlaps = [text[:-k] for k in range(min(len(text), len(after)), 0, -1) if text.endswith(after[:k])]
    cuts = [text[:pos] for pos in reversed(_cut_points(text, ctx))]
    return [*overlaps, text, text + _closers_for(text, ctx), *cuts]


def _cut_points(text: str, ctx: _Context) -> list[int]:
    kinds = ("close", "str_open", "str_close")
    return [pos for pos, kind, _ in scan(text, ctx.lex.copy(), ctx.syntax) if kind in kinds]


def _closers_for(text: str, ctx: _Context) -> str:
    """What closes the string and brackets ``text`` opened and left open ("" inside a comment)."""
    lex = ctx.lex.copy()
    own: list[str] = []
    opened_string = False
    for _, kind, tok in scan(text, lex, ctx.syntax):
        if kind == "open":
            own.append(tok)
        elif kind == "close" and own and own[-1] == OPENER[tok]:
            own.pop()
        elif kind == "str_open":
            opened_string = True
    if lex.end is not None and not lex.string:
        return ""
    quote = lex.end if lex.in_string and opened_string and lex.end else ""
    return quote + "".join(CLOSER[o] for o in reversed(own))


def _simulate(insert: str, ctx: _Context) -> _Outcome:
    """Replay the insert and the text after the cursor from the cursor's state."""
    lex, stack = ctx.lex.copy(), list(ctx.stack)
    strays = broken = 0
    for _, kind, tok in scan(insert + ctx.suffix_window, lex, ctx.syntax):
        if kind == "open":
            stack.append(tok)
        elif kind == "close" and stack and stack[-1] == OPENER[tok]:
            stack.pop()
        elif kind == "close":
            strays += 1
        elif kind == "str_break":
            broken += 1
    return _Outcome(strays, broken, len(stack), lex.end is not None and lex.end != "\n")


def _problems(new: _Outcome, baseline: _Outcome) -> int:
    """Bracket and quote problems after inserting, counted against the document as it is:
    stray closers and broken strings count in full (the baseline's are the same for every
    variant), extra brackets left open and a string that swallows the rest count as one each."""
    swallowed = new.open_at_end and not baseline.open_at_end
    return new.strays + new.broken + max(0, new.depth - baseline.depth) + int(swallowed)


# --------------------------------------------------------------------------------------------
# Multi-line mode.


def _multi_line(lines: list[str], ctx: _Context, max_lines: int | None) -> str:
    lines = [_drop_restarted_word(lines[0], ctx), *lines[1:]]
    lines = [line.rstrip() for line in lines]
    lines = restyle(lines, ctx.style, first_line_indented=not ctx.line_before.strip())
    lines = _fix_first_line_level(lines, ctx)
    lines = _stop_at_block_end(lines, ctx)
    lines = _limit_lines(lines, max_lines)
    lines = _drop_repeat_of_lines_below(lines, ctx)
    return "\n".join(drop_trailing_blank(lines))


def _limit_lines(lines: list[str], max_lines: int | None) -> list[str]:
    """At most ``max_lines`` lines; an empty first line (the suggestion starts with a line break
    after the cursor's text) is not one of them."""
    if max_lines is None:
        return lines
    return lines[: max(max_lines, 0) + (1 if lines and not lines[0] else 0)]


def _fix_first_line_level(lines: list[str], ctx: _Context) -> list[str]:
    """Keep the first line at the level the document expects when the cursor is in a line's
    indentation.

    * Repeated indentation: at ``····|`` peers insert the model's ``····return x`` and the
      line ends up indented twice. When the cursor's and the suggestion's indentation together
      go deeper than the line above allows (its level, plus one after a block opener), the
      suggestion's own indentation shrinks to what is missing (usually nothing).
    * Under-indented body: below ``def f():`` (or a line ending in ``{``) a first line at the
      header's level is a syntax error in Python and a misplaced line elsewhere; the
      suggestion moves right one level, all its lines with it except closers."""
    if ctx.line_before.strip() or not lines or not lines[0].strip():
        return lines
    ws = indentation_of(lines[0])
    cursor = indent_width(ctx.line_before)
    total = cursor + indent_width(ws)
    base = indent_width(indentation_of(ctx.prev_line)) if ctx.prev_line is not None else 0
    opener = opens_block(ctx.prev_line, ctx.syntax)
    expected = base + ctx.style.unit if opener else base
    if ws and total > max(cursor, expected):
        return [ctx.style.make(max(expected - cursor, 0)) + lines[0][len(ws) :], *lines[1:]]
    if opener and total <= base and not _continues_outer(lines[0], ctx.syntax):
        pad = ctx.style.make(expected - total)
        return [line if not line.strip() or _continues_outer(line, ctx.syntax) else pad + line for line in lines]
    return lines


def _continues_outer(line: str, syntax: Syntax) -> bool:
    """The line starts with a closer, or (Python) a clause like ``else:`` of the outer header."""
    stripped = line.lstrip()
    if stripped[:1] in OPENER:
        return True
    head = _WORD_HEAD.match(stripped)
    return syntax.python and head is not None and head.group() in _PY_CONTINUATIONS


_KEEP, _LAST, _STOP = "keep", "last", "stop"


@dataclass(frozen=True)
class _Block:
    """The cursor's block, judged by indentation.

    ``ref`` is the first non-blank line of the suggestion (line 0 includes the text before
    the cursor). When the cursor ends a header the user wrote (``if x:``, ``{``), the block is
    its body: lines must be deeper than the header. Otherwise the block is the one ``ref`` is
    in: lines must be at least as deep as ``ref``."""

    ref: int
    indent: int
    opener: bool
    floor: int  # the cursor's own indentation, for a suggestion that starts with blank lines
    syntax: Syntax

    @classmethod
    def of(cls, lines: list[str], ctx: _Context) -> _Block:
        full = [ctx.line_before + lines[0], *lines[1:]]
        ref = next((i for i, line in enumerate(full) if line.strip()), len(full))
        line = full[ref] if ref < len(full) else ""
        opener = ref == 0 and bool(ctx.line_before.strip()) and opens_block(line, ctx.syntax)
        floor = indent_width(ctx.line_before) if not ctx.line_before.strip() else 0
        return cls(ref, indent_width(indentation_of(line)), opener, floor, ctx.syntax)

    def verdict(self, index: int, line: str) -> str:
        if index < self.ref or not line.strip():
            return _KEEP
        columns = indent_width(indentation_of(line))
        if index == self.ref:
            return _KEEP if index == 0 or columns >= self.floor else _STOP
        if columns > self.indent or (columns == self.indent and not self.opener):
            return _KEEP
        if line.lstrip()[0] in OPENER:
            return _KEEP if opens_block(line, self.syntax) else _LAST  # `}` or `} else {`
        if self.opener and columns == self.indent and _continues_outer(line, self.syntax):
            return _KEEP  # Python's else/elif/except/finally
        return _STOP


class _BracketGuard:
    """Follows brackets and strings through a multi-line suggestion and reports the first
    closer (or closing quote) that closes something the prefix did not open, or something the
    suffix already closes."""

    def __init__(self, ctx: _Context) -> None:
        self._syntax = ctx.syntax
        self._lex = ctx.lex.copy()
        self._prefix = list(zip(ctx.stack, ctx.consumed))
        self._own: list[str] = []
        self._in_prefix_string = ctx.lex.in_string
        self._string_closed = ctx.string_closed

    @property
    def in_text(self) -> bool:
        """Inside a string or block comment: indentation says nothing there."""
        return self._lex.end is not None and self._lex.end != "\n"

    def feed(self, text: str) -> int | None:
        """Scan ``text``; the index of the first offending character, or None."""
        for pos, kind, tok in scan(text, self._lex, self._syntax):
            if kind == "open":
                self._own.append(tok)
            elif kind == "close" and not self._close(tok):
                return pos
            elif kind in ("str_close", "str_break") and self._in_prefix_string:
                self._in_prefix_string = False
                if kind == "str_close" and self._string_closed:
                    return pos
        return None

    def _close(self, closer: str) -> bool:
        opener = OPENER[closer]
        if self._own:
            return self._own.pop() == opener
        if self._prefix and self._prefix[-1] == (opener, False):
            self._prefix.pop()
            return True
        return False


def _stop_at_block_end(lines: list[str], ctx: _Context) -> list[str]:
    """Rule 5: stop at the first line that leaves the cursor's block, or at the first closer
    that is not the suggestion's to write.

    Peers show a whole function when the cursor's block needed two lines, or end a body with
    the ``}`` that is already on the next line, leaving ``}}``. A closing line below the block
    (``}``, ``)``) is kept when the bracket is the suggestion's to close, and ends it."""
    block, guard = _Block.of(lines, ctx), _BracketGuard(ctx)
    out: list[str] = []
    for i, line in enumerate(lines):
        verdict = _KEEP if guard.in_text else block.verdict(i, line)
        if verdict == _STOP:
            break
        bad = guard.feed(line)
        if bad is not None:
            out.append(line[:bad].rstrip())
            break
        out.append(line)
        if verdict == _LAST:
            break
        guard.feed("\n")
    return out


def _drop_repeat_of_lines_below(lines: list[str], ctx: _Context) -> list[str]:
    """Rule 6: the suggestion must not repeat the code below the cursor.

    FIM models often end by re-emitting the next line (``return x`` that is already there),
    or stop in the middle of it (``····ret``); peers show it and the user gets it twice. From
    the earliest line where the rest of the suggestion is the start of the lines below (blank
    lines aside, the last line may be a prefix of its counterpart), or where a distinctive line
    equals the first line below, the suggestion is cut -- unless that would orphan a closer
    the suggestion needs for its own brackets."""
    below = [line.rstrip() for line in ctx.below if line.strip()]
    if not below or not lines:
        return lines
    full = [ctx.line_before + lines[0], *lines[1:]]
    first = 0 if not ctx.line_before.strip() else 1
    for i in range(first, len(full)):
        if full[i].strip() and _runs_into(full[i:], below) and _safe_to_drop(full[:i], full[i:], ctx):
            return lines[:i]
    return lines


def _runs_into(tail: list[str], below: list[str]) -> bool:
    tail = [line for line in tail if line.strip()]
    if tail[0] == below[0] and _distinctive(tail[0]):
        return True
    if len(tail) > len(below) or tail[:-1] != below[: len(tail) - 1]:
        return False
    return below[len(tail) - 1].startswith(tail[-1])


def _distinctive(line: str) -> bool:
    text = line.strip()
    return len(text) >= 6 and any(c.isalnum() for c in text)


def _safe_to_drop(kept: list[str], dropped: list[str], ctx: _Context) -> bool:
    """Dropping ``dropped`` must not remove a closer of a bracket opened in ``kept``."""
    lex, own = ctx.lex.copy(), []
    for part, from_kept in (("\n".join(kept), True), ("\n" + "\n".join(dropped), False)):
        for _, kind, tok in scan(part, lex, ctx.syntax):
            if kind == "open":
                own.append(from_kept)
            elif kind == "close" and own:
                if own.pop() and not from_kept:
                    return False
    return True
