"""Minimal edits between two texts: exact on examples, and a round trip that never touches an
unchanged line on random line lists."""

from __future__ import annotations

from difflib import SequenceMatcher

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemma_lsp.actions import TextChange, apply, minimal_edits
from gemma_lsp.actions.diff import split_keepends


def test_one_word_changed_is_one_small_edit():
    old = "def f(x):\n    total = x + 1\n    return total\n"
    new = "def f(x):\n    total = x + 2\n    return total\n"
    assert minimal_edits(old, new) == [TextChange(old.index("1\n"), old.index("1\n") + 1, "2")]


def test_a_renamed_word_is_replaced_alone():
    old = "print(nam)\n"
    assert minimal_edits(old, "print(name)\n") == [TextChange(9, 9, "e")]


def test_a_line_inserted_is_one_insertion_at_a_line_start():
    old = "a = 1\nb = 2\n"
    assert minimal_edits(old, "a = 1\nc = 3\nb = 2\n") == [TextChange(6, 6, "c = 3\n")]


def test_a_line_deleted_is_one_deletion_of_that_line():
    old = "a = 1\nb = 2\nc = 3\n"
    assert minimal_edits(old, "a = 1\nc = 3\n") == [TextChange(6, 12, "")]


def test_crlf_text_is_diffed_by_lines_and_never_split_inside_a_line_break():
    old = "a = 1\r\nb = 2\r\n"
    assert minimal_edits(old, "a = 1\r\nb = 3\r\n") == [TextChange(11, 12, "3")]
    # a line break changed from CRLF to LF: the edit covers the whole "\r\n", not the "\r" alone
    assert minimal_edits(old, "a = 1\nb = 2\r\n") == [TextChange(5, 7, "\n")]


def test_equal_texts_give_no_edits():
    assert minimal_edits("same\n", "same\n") == []
    assert minimal_edits("", "") == []


def test_edits_of_neighbouring_lines_that_touch_become_one():
    # the first line's break and the second line's first character change: [2, 3) and [3, 4)
    assert minimal_edits("ab\ncd\n", "ab\rXd\n") == [TextChange(2, 4, "\rX")]


def test_edits_of_neighbouring_lines_apart_stay_two():
    assert minimal_edits("ab\ncd\n", "aX\nYd\n") == [TextChange(1, 2, "X"), TextChange(3, 4, "Y")]


def test_apply_refuses_overlapping_changes():
    with pytest.raises(ValueError):
        apply("abcdef", [TextChange(0, 3, "x"), TextChange(2, 4, "y")])
    with pytest.raises(ValueError):
        apply("abc", [TextChange(2, 5, "x")])


_LINE = st.text(alphabet="ab \tx(", max_size=6)
_BREAK = st.sampled_from(["\n", "\r\n"])
_LINES = st.lists(st.tuples(_LINE, _BREAK).map("".join), max_size=12)


@st.composite
def _edited(draw: st.DrawFn) -> tuple[str, str]:
    """A text of lines, and the same text with lines replaced, inserted, deleted or edited."""
    lines = draw(_LINES)
    new = list(lines)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "edit"]))
        at = draw(st.integers(0, len(new)))
        if op == "insert":
            new.insert(at, draw(_LINE) + draw(_BREAK))
        elif at < len(new) and op == "delete":
            del new[at]
        elif at < len(new) and op == "replace":
            new[at] = draw(_LINE) + draw(_BREAK)
        elif at < len(new):
            line = new[at]
            cut = draw(st.integers(0, len(line.rstrip("\r\n"))))
            new[at] = line[:cut] + draw(_LINE) + line[cut:]
    last = draw(st.text(alphabet="ab", max_size=3))  # a last line without a line break
    return "".join(lines) + last, "".join(new) + last


@given(_edited())
def test_applying_the_edits_gives_the_new_text_and_leaves_unchanged_lines_alone(texts):
    old, new = texts
    changes = minimal_edits(old, new)
    assert apply(old, changes) == new
    assert all(a.end < b.start for a, b in zip(changes, changes[1:]))  # disjoint, apart, sorted
    lines = split_keepends(old)
    starts = [sum(map(len, lines[:i])) for i in range(len(lines) + 1)]
    matcher = SequenceMatcher(None, lines, split_keepends(new), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            continue
        kept_start, kept_end = starts[i1], starts[i2]
        for change in changes:  # an insertion may sit at a kept line's start or end, never inside
            assert change.end <= kept_start or change.start >= kept_end, (change, old[kept_start:kept_end])


@given(st.text(alphabet="ab\r\n", max_size=30), st.text(alphabet="ab\r\n", max_size=30))
def test_any_two_texts_round_trip_without_splitting_a_crlf(old, new):
    changes = minimal_edits(old, new)
    assert apply(old, changes) == new
    for change in changes:
        for offset in (change.start, change.end):
            assert not (0 < offset < len(old) and old[offset - 1] == "\r" and old[offset] == "\n"), change
