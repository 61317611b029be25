"""The document store: edits and position <-> offset conversion in every encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types as lsp

from gemma_lsp.lsp.documents import TextDocument

TEXT = "def f():\r\n    return '🎉é'  # ok\nx = 1\n"


def pos(line: int, character: int) -> lsp.Position:
    return lsp.Position(line=line, character=character)


@pytest.mark.parametrize(
    "encoding, column_after_emoji",
    [("utf-16", 14), ("utf-8", 16), ("utf-32", 13)],
)
def test_positions_count_the_clients_code_units(encoding, column_after_emoji):
    doc = TextDocument("file:///a.py", TEXT, encoding=encoding)
    offset = TEXT.index("é")
    assert doc.position_at(offset) == pos(1, column_after_emoji)
    assert doc.offset_at(pos(1, column_after_emoji)) == offset


def test_a_position_past_the_end_of_a_line_clamps_to_it():
    doc = TextDocument("file:///a.py", TEXT)
    assert doc.offset_at(pos(0, 99)) == TEXT.index("\r")  # not into the line break
    assert doc.offset_at(pos(99, 0)) == len(TEXT)


def test_incremental_edits_apply_like_an_editor():
    doc = TextDocument("file:///a.py", TEXT)
    doc.apply(lsp.TextDocumentContentChangePartial(range=lsp.Range(start=pos(2, 4), end=pos(2, 5)), text="42"))
    doc.apply(lsp.TextDocumentContentChangePartial(range=lsp.Range(start=pos(1, 14), end=pos(1, 15)), text="e"))
    doc.apply(lsp.TextDocumentContentChangePartial(range=lsp.Range(start=pos(3, 0), end=pos(3, 0)), text="y = 2\n"))
    assert doc.text == "def f():\r\n    return '🎉e'  # ok\nx = 42\ny = 2\n"
    doc.apply(lsp.TextDocumentContentChangeWholeDocument(text="new"))
    assert doc.text == "new"


@given(st.text(alphabet=st.sampled_from(list("ab\n\r é🎉\t")), max_size=60), st.data())
def test_offset_and_position_round_trip(text, data):
    doc = TextDocument("file:///a.py", text)
    offset = data.draw(st.integers(min_value=0, max_value=len(text)))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        return  # between \r and \n is not a position a client can name
    assert doc.offset_at(doc.position_at(offset)) == offset
