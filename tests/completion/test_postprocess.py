"""Post-processing of raw model text into an edit: table-driven golden cases and properties.

Golden cases live in tests/completion/golden/postprocess/, one file per case::

    # What the case shows (comment lines).
    language: python        (an LSP languageId; "" or absent: unknown)
    max_lines: 3            (optional)
    eol: crlf               (optional: the document and the expected text use \\r\\n)
    raw_eol: crlf           (optional: the raw text uses \\r\\n)
    --- document
    text with one <CURSOR>
    --- raw
    what the model generated at the cursor
    --- expected
    the whole document after accepting the suggestion, or <NONE> for no suggestion

A section is the lines between its marker and the next marker (or the end of the file), so
a section that ends with a line break ends with an empty line. ``⇥`` stands for a tab and
``␠`` for a space (for whitespace at the end of a line, which editors strip).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemma_lsp.completion.postprocess import (
    MULTI_LINE,
    SINGLE_LINE,
    Edit,
    completion_mode,
    postprocess,
)

GOLDEN = Path(__file__).parent / "golden" / "postprocess"
CURSOR = "<CURSOR>"
NONE = "<NONE>"
LANGUAGES = ("python", "typescript", "go", "rust")


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    language: str
    max_lines: int | None
    document: str  # without the cursor marker
    offset: int
    raw: str
    expected: str | None


def _visible(text: str) -> str:
    return text.replace("⇥", "\t").replace("␠", " ")


def load_case(path: Path) -> Case:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's own final line break
    header: dict[str, str] = {}
    comments: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("--- "):
            current = sections.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
        elif line.startswith("#"):
            comments.append(line.lstrip("# "))
        elif line.strip():
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    assert set(sections) == {"document", "raw", "expected"}, f"{path.name}: sections {sorted(sections)}"
    eol = "\r\n" if header.get("eol") == "crlf" else "\n"
    raw_eol = "\r\n" if header.get("raw_eol") == "crlf" else "\n"
    marked = _visible("\n".join(sections["document"])).replace("\n", eol)
    assert marked.count(CURSOR) == 1, f"{path.name}: the document needs exactly one {CURSOR}"
    expected = "\n".join(sections["expected"])
    return Case(
        name=path.stem,
        description=" ".join(comments),
        language=header.get("language", ""),
        max_lines=int(header["max_lines"]) if "max_lines" in header else None,
        document=marked.replace(CURSOR, ""),
        offset=marked.index(CURSOR),
        raw=_visible("\n".join(sections["raw"])).replace("\n", raw_eol),
        expected=None if expected == NONE else _visible(expected).replace("\n", eol),
    )


def accept(document: str, edit: Edit) -> str:
    return document[: edit.start] + edit.text + document[edit.end :]


def assert_well_formed(edit: Edit, document: str, offset: int) -> None:
    """The invariants every edit keeps (the module's range rule)."""
    assert 0 <= edit.start <= offset <= edit.end <= len(document)
    assert edit.start == offset, "an edit starts at the cursor"
    assert document[edit.start : edit.end].strip() == "", "an edit replaces only whitespace"
    assert edit.text.strip(), "never an empty or whitespace-only edit"
    for line in edit.text.replace("\r\n", "\n").split("\n"):
        assert line == line.rstrip(), f"trailing whitespace in {edit.text!r}"
    accepted = accept(document, edit)
    assert accepted.startswith(document[:offset]), "accepting never removes what was typed before the cursor"
    assert accepted.endswith(document[edit.end :])


CASES = [load_case(path) for path in sorted(GOLDEN.glob("*.txt"))]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden(case: Case) -> None:
    edit = postprocess(case.raw, case.document, case.offset, language=case.language, max_lines=case.max_lines)
    if case.expected is None:
        assert edit is None, f"{case.description}\nexpected no suggestion, got {edit!r}"
        return
    assert edit is not None, f"{case.description}\nexpected a suggestion, got None"
    assert_well_formed(edit, case.document, case.offset)
    assert accept(case.document, edit) == case.expected, case.description


def test_golden_cases_cover_every_language() -> None:
    per_language = Counter(case.language for case in CASES)
    assert len(CASES) >= 40
    for language in LANGUAGES:
        assert per_language[language] >= 9, per_language


def test_golden_cases_describe_themselves() -> None:
    assert all(case.description for case in CASES)


# --------------------------------------------------------------------------------------------
# completion_mode


@pytest.mark.parametrize(
    "document, offset, mode",
    [
        ("foo()", 4, SINGLE_LINE),  # a closer right of the cursor is text too
        ("x = 1   \n", 5, MULTI_LINE),  # only whitespace to the end of the line
        ("x = 1\r\ny", 5, MULTI_LINE),  # \r is part of the line break
        ("", 0, MULTI_LINE),
        ("abc", 99, MULTI_LINE),  # clamped to the end
        ("a  # note\n", 1, SINGLE_LINE),
    ],
)
def test_completion_mode(document: str, offset: int, mode: str) -> None:
    assert completion_mode(document, offset) == mode


def test_single_line_mode_never_inserts_a_line_break() -> None:
    edit = postprocess("a, b)\nprint(x)\n", "foo()\n", 4, language="python")
    assert edit == Edit("a, b", 4, 4)


def test_max_lines_does_not_count_a_leading_line_break() -> None:
    edit = postprocess("\n    x = 1\n    y = 2\n    z = 3", "def f():\n", 8, language="python", max_lines=2)
    assert edit is not None and edit.text == "\n    x = 1\n    y = 2"


def test_cursor_between_cr_and_lf_is_no_position() -> None:
    assert postprocess("x", "a\r\nb", 2) is None


def test_an_offset_out_of_range_is_clamped() -> None:
    assert postprocess(" + 1", "x = 1", 99) == Edit(" + 1", 5, 5)


# --------------------------------------------------------------------------------------------
# Properties


code_chars = st.sampled_from(list("ab_x1 (){}[]\"'`#/*\\:;,.=\n\r\t") + ["\x0b", "\u2028", "\x85", "é"])
documents = st.text(alphabet=code_chars, max_size=80)
raws = st.text(alphabet=code_chars, max_size=60)
languages = st.sampled_from(["python", "typescript", "go", "rust", ""])
limits = st.one_of(st.none(), st.integers(min_value=0, max_value=4))


@settings(max_examples=400, deadline=None)
@given(raws, documents, st.data(), languages, limits)
def test_any_result_is_none_or_a_well_formed_edit(raw, document, data, language, max_lines):
    offset = data.draw(st.integers(min_value=0, max_value=len(document)))
    edit = postprocess(raw, document, offset, language=language, max_lines=max_lines)
    if edit is None:
        return
    assert_well_formed(edit, document, offset)
    if completion_mode(document, offset) == SINGLE_LINE:
        assert "\n" not in edit.text
    elif max_lines is not None:
        lines = edit.text.split("\n")
        assert len(lines) - (1 if lines[0] == "" else 0) <= max_lines


crlf_lines = st.lists(st.text(alphabet=st.sampled_from(list("ab (){}\t:")), max_size=12), min_size=2, max_size=6)


@settings(max_examples=200, deadline=None)
@given(raws, crlf_lines, st.data(), languages)
def test_a_crlf_document_gets_crlf_line_breaks(raw, lines, data, language):
    document = "\r\n".join(lines)
    offset = data.draw(st.integers(min_value=0, max_value=len(document)))
    edit = postprocess(raw, document, offset, language=language)
    if edit is None:
        return
    assert_well_formed(edit, document, offset)
    assert "\n" not in edit.text.replace("\r\n", "")


@settings(max_examples=300, deadline=None)
@given(documents, st.data(), languages)
def test_repeating_the_text_right_of_the_cursor_is_no_suggestion(document, data, language):
    offset = data.draw(st.integers(min_value=0, max_value=len(document)))
    rest = document[offset:].replace("\r", "\n").split("\n")[0]
    raw = rest[: data.draw(st.integers(min_value=1, max_value=max(1, len(rest))))]
    if completion_mode(document, offset) == SINGLE_LINE and raw.strip():
        assert postprocess(raw, document, offset, language=language) is None


@settings(max_examples=300, deadline=None)
@given(raws, documents, st.data(), languages)
def test_typing_ahead_keeps_the_edit_valid(raw, document, data, language):
    """The user types the start of the suggestion before accepting it: the same edit, shifted
    by what was typed, produces the same document -- nothing left over, nothing doubled."""
    offset = data.draw(st.integers(min_value=0, max_value=len(document)))
    edit = postprocess(raw, document, offset, language=language)
    if edit is None:
        return
    typed = edit.text[: data.draw(st.integers(min_value=0, max_value=len(edit.text)))]
    after_typing = document[:offset] + typed + document[offset:]
    shifted = Edit(edit.text[len(typed) :], edit.start + len(typed), edit.end + len(typed))
    assert accept(after_typing, shifted) == accept(document, edit)
