"""A small lexer: brackets, strings and comments, nothing else.

Enough to tell where code is, which brackets are open and whether an offset is inside a string
or a comment. Python, JavaScript/TypeScript, Go and Rust are lexed by their own syntax (from
the language table); any other language as C-like code. Offsets are ``str`` indices.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from gemma_lsp.languages import LANGUAGES, Language

OPENER = {")": "(", "]": "[", "}": "{"}  # closer -> the opener it closes
CLOSER = {"(": ")", "[": "]", "{": "}"}  # opener -> the closer that closes it

_PREFIX_WINDOW = 10_000  # characters before an offset scanned for its state
_WORD_TAIL = re.compile(r"[\w$]+\Z")
WORD_TAIL_LIMIT = 256
"""The longest word fragment looked at before a cursor: no identifier is longer in practice."""


def word_tail(text: str, end: int | None = None, limit: int = WORD_TAIL_LIMIT) -> str:
    """The run of word characters (``[\\w$]``) that ends at ``end``, at most its last ``limit``.

    Looks at ``limit`` characters only: a search over the whole text tries every start on a
    line of word characters, quadratic in its length (a 128 KiB line took 55 s).
    """
    end = len(text) if end is None else end
    found = _WORD_TAIL.search(text, max(0, end - limit), end)
    return found.group() if found else ""


@dataclass(frozen=True)
class Syntax:
    """What the lexer needs to know of a language: comments and string delimiters."""

    name: str
    line_comment: str | None
    block_comment: tuple[str, str] | None
    quotes: tuple[str, ...]  # longest first
    multiline: frozenset[str]  # delimiters whose strings may span lines
    raw: frozenset[str]  # delimiters whose strings have no backslash escapes

    @classmethod
    def of(cls, language: Language) -> Syntax:
        return cls(
            language.id, language.line_comment, language.block_comment, language.quotes,
            language.multiline_quotes, language.raw_quotes,
        )  # fmt: skip

    @property
    def python(self) -> bool:
        return self.name == "python"

    @property
    def rust(self) -> bool:
        return self.name == "rust"


# The languages whose syntax the lexer's users are checked on; any other is lexed as C-like code.
_LEXED = ("python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust")
_SYNTAX = {language_id: Syntax.of(LANGUAGES[language_id]) for language_id in _LEXED}
_GENERIC = Syntax("", "//", ("/*", "*/"), ('"', "'"), frozenset(), frozenset())


def syntax_for(language: Language | None) -> Syntax:
    """The syntax to lex ``language`` with (C-like when unknown or not lexed by its own)."""
    return _SYNTAX.get(language.id, _GENERIC) if language is not None else _GENERIC


@dataclass
class Lex:
    """Where a scan stands: in code, or inside a string or comment that ``end`` closes."""

    end: str | None = None
    string: bool = False
    escapes: bool = False
    single_line: bool = False
    escaped: bool = False  # the last character scanned was an escaping backslash

    @property
    def in_string(self) -> bool:
        return self.end is not None and self.string

    def copy(self) -> Lex:
        return replace(self)

    def enter(self, end: str, *, string: bool, escapes: bool = False, single_line: bool = False) -> None:
        self.end, self.string, self.escapes, self.single_line = end, string, escapes, single_line

    def leave(self) -> None:
        self.end, self.string, self.escapes, self.single_line = None, False, False, False


@lru_cache(maxsize=None)
def _code_pattern(syntax: Syntax) -> re.Pattern[str]:
    parts = []
    if syntax.line_comment:
        parts.append(f"(?P<line_comment>{re.escape(syntax.line_comment)})")
    if syntax.block_comment:
        parts.append(f"(?P<block_comment>{re.escape(syntax.block_comment[0])})")
    if syntax.rust:
        parts.append(r'(?P<raw_string>(?<![\w])b?r#*")')
        parts.append(r"(?P<char>'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.)|[^\\'\n])')")
        parts.append(r"(?P<lifetime>')")
    parts.append("(?P<quote>" + "|".join(re.escape(q) for q in syntax.quotes) + ")")
    parts.append(r"(?P<bracket>[()\[\]{}])")
    return re.compile("|".join(parts))


@lru_cache(maxsize=None)
def _end_pattern(end: str, escapes: bool, single_line: bool) -> re.Pattern[str]:
    parts = [re.escape(end)]
    if escapes:
        parts.append(r"\\")
    if single_line:
        parts.append(r"\n")
    return re.compile("|".join(parts))


def scan(text: str, lex: Lex, syntax: Syntax) -> Iterator[tuple[int, str, str]]:
    """Yield ``(index, kind, token)`` for the brackets, string delimiters and comment starts of
    ``text``, continuing from ``lex`` and updating it. Kinds: ``open``, ``close``,
    ``str_open``, ``str_close``, ``str_break`` (a line break ends an unterminated one-line
    string), ``comment``."""
    i, n = 0, len(text)
    while i < n:
        if lex.escaped:
            lex.escaped = False
            i += 1
        elif lex.end is None:
            m = _code_pattern(syntax).search(text, i)
            if m is None:
                return
            i = m.end()
            kind = _enter_token(m, lex, syntax)
            if kind:
                yield m.start(), kind, m.group()
        else:
            m = _end_pattern(lex.end, lex.escapes, lex.single_line).search(text, i)
            if m is None:
                return
            i = m.end()
            kind = _leave_token(m.group(), lex)
            if kind:
                yield m.start(), kind, m.group()


def _enter_token(m: re.Match[str], lex: Lex, syntax: Syntax) -> str | None:
    kind, tok = m.lastgroup, m.group()
    if kind == "bracket":
        return "open" if tok in CLOSER else "close"
    if kind == "quote":
        lex.enter(tok, string=True, escapes=tok not in syntax.raw, single_line=tok not in syntax.multiline)
        return "str_open"
    if kind == "raw_string":
        lex.enter('"' + "#" * tok.count("#"), string=True)
        return "str_open"
    if kind == "line_comment":
        lex.enter("\n", string=False)
        return "comment"
    if kind == "block_comment":
        assert syntax.block_comment is not None
        lex.enter(syntax.block_comment[1], string=False)
        return "comment"
    return None  # a complete Rust char literal, or a lifetime


def _leave_token(tok: str, lex: Lex) -> str | None:
    if tok == "\\":
        lex.escaped = True
        return None
    was_string = lex.string
    if tok == lex.end:
        lex.leave()
        return "str_close" if was_string else None
    lex.leave()  # a line break inside a one-line string
    return "str_break"


def pop_matching(stack: list[str], closer: str) -> None:
    """Pop the nearest opener ``closer`` closes; unclosed openers above it go too (recovery)."""
    opener = OPENER[closer]
    for j in range(len(stack) - 1, -1, -1):
        if stack[j] == opener:
            del stack[j:]
            return


def code_part(line: str, syntax: Syntax) -> str:
    """``line`` without its trailing comment."""
    for pos, kind, _ in scan(line, Lex(), syntax):
        if kind == "comment":
            return line[:pos]
    return line


def opens_block(line: str | None, syntax: Syntax) -> bool:
    """The line ends with an opening bracket, or (Python) with the ``:`` of a block header."""
    if line is None:
        return False
    code = code_part(line, syntax).rstrip()
    return bool(code) and (code[-1] in CLOSER or (syntax.python and code[-1] == ":"))


def state_at(doc: str, offset: int, syntax: Syntax) -> tuple[Lex, list[str]]:
    """Lexer state and open brackets at ``offset``, scanning from a line start within a window.

    The state at the start of the offset's line is cached by the text before it: while the
    user types on one line only that line is scanned again (this runs on every keystroke).
    """
    floor = max(0, offset - _PREFIX_WINDOW)
    start = 0 if floor == 0 else doc.rfind("\n", 0, floor) + 1
    if start < floor - _PREFIX_WINDOW:
        start = floor  # inside a very long line: the window, never the whole line
    line_start = max(start, doc.rfind("\n", 0, offset) + 1)
    key = (hash(doc[start:line_start]), line_start - start, syntax)
    cached = _LINE_STATES.get(key)
    if cached is None:
        lex, stack = _scan_state(doc[start:line_start], Lex(), [], syntax)
        _LINE_STATES[key] = (lex.copy(), list(stack))
        while len(_LINE_STATES) > _LINE_STATE_CACHE:
            del _LINE_STATES[next(iter(_LINE_STATES))]
    else:
        lex, stack = cached[0].copy(), list(cached[1])
    return _scan_state(doc[line_start:offset], lex, stack, syntax)


_LINE_STATE_CACHE = 64
_LINE_STATES: dict[tuple, tuple[Lex, list[str]]] = {}


def _scan_state(text: str, lex: Lex, stack: list[str], syntax: Syntax) -> tuple[Lex, list[str]]:
    for _, kind, tok in scan(text, lex, syntax):
        if kind == "open":
            stack.append(tok)
        elif kind == "close":
            pop_matching(stack, tok)
    return lex, stack
