"""The edits that put a replacement in place of a selection: document offsets, and nothing
outside the selection."""

from __future__ import annotations

import pytest

from gemma_lsp.actions import OutsideSelection, TextChange, apply, inside, selection_edits
from gemma_lsp.errors import GemmaLspError

DOC = "import os\n\ndef f(x):\n    return x + 1\n\nprint(f(2))\n"


def test_offsets_are_absolute_in_the_document():
    start, end = DOC.index("def f"), DOC.index("\nprint")
    changes = selection_edits(DOC, start, end, DOC[start:end].replace("+ 1", "+ 2"))
    at = DOC.index("1\n\nprint")
    assert changes == [TextChange(at, at + 1, "2")]
    assert apply(DOC, changes) == DOC.replace("+ 1", "+ 2")


def test_a_replacement_equal_to_the_selection_gives_no_edits():
    assert selection_edits(DOC, 0, 9, "import os") == []


def test_lines_added_at_the_selections_ends_stay_inside_it():
    start, end = DOC.index("def f"), DOC.index("\n\nprint") + 1
    replacement = '# doc\n' + DOC[start:end] + '# end\n'
    changes = selection_edits(DOC, start, end, replacement)
    assert all(start <= c.start <= c.end <= end for c in changes)
    assert apply(DOC, changes) == DOC[:start] + replacement + DOC[end:]


def test_a_change_outside_the_selection_is_refused():
    with pytest.raises(OutsideSelection, match="outside the selection"):
        inside([TextChange(5, 6, "x"), TextChange(20, 30, "y")], 0, 25)
    with pytest.raises(OutsideSelection):
        inside([TextChange(3, 3, "x")], 4, 10)


def test_changes_within_or_at_the_selections_bounds_pass():
    changes = [TextChange(4, 4, "a"), TextChange(6, 10, "")]
    assert inside(changes, 4, 10) == changes


def test_outside_selection_is_a_value_error_and_one_of_the_projects_errors():
    assert issubclass(OutsideSelection, ValueError) and issubclass(OutsideSelection, GemmaLspError)


def test_a_selection_outside_the_document_is_a_value_error():
    with pytest.raises(ValueError):
        selection_edits("abc", 2, 5, "x")
