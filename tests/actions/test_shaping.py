"""A model's answer shaped into the code that replaces a selection: fences, indentation, the
selection's line breaks, and answers that leave nothing to apply."""

from __future__ import annotations

import pytest

from gemma_lsp.actions import code_of, shape_code

METHOD_DOC = (
    "class Greeter:\n"
    "    def greet(self, name):\n"
    "        return 'hi ' + nam\n"
    "\n"
    "    def leave(self):\n"
    "        pass\n"
)


def _method_selection(doc: str = METHOD_DOC) -> tuple[str, int, int]:
    start = doc.index("    def greet")
    end = doc.index("\n    def leave") + 1
    return doc[start:end], start, end


def test_code_is_taken_out_of_a_fence_with_a_language():
    answer = "Here is the fix:\n\n```python\nx = 1\ny = 2\n```\n\nThe name was wrong."
    assert code_of(answer, "python") == ["x = 1", "y = 2"]


def test_code_is_taken_out_of_a_fence_without_a_language():
    assert code_of("Fixed:\n```\nx = 1\n```\n", "python") == ["x = 1"]


def test_the_block_in_the_documents_language_wins_over_earlier_blocks():
    answer = "Run:\n```bash\npip install x\n```\nThen:\n```py\nimport x\n```\n"
    assert code_of(answer, "python") == ["import x"]


def test_without_a_block_in_the_language_the_first_block_is_taken():
    answer = "```\nfirst\n```\ntext\n```\nsecond\n```"
    assert code_of(answer, "go") == ["first"]


def test_a_fence_the_answer_never_closes_runs_to_its_end():
    assert code_of("```rust\nfn main() {\n}", "rust") == ["fn main() {", "}"]


def test_tilde_fences_and_an_answer_without_fence():
    assert code_of("~~~python\na = 1\n~~~", "python") == ["a = 1"]
    assert code_of("a = 1\nb = 2", "python") == ["a = 1", "b = 2"]


def test_blank_lines_around_the_code_and_trailing_spaces_are_dropped():
    doc = "x = 0\n"
    answer = "```python\n\n\nx = 1   \n\n```"
    assert shape_code(answer, "x = 0\n", doc, 0, len(doc), "python") == "x = 1\n"


def test_a_column_0_answer_is_indented_like_the_selected_method():
    selection, start, end = _method_selection()
    answer = "```python\ndef greet(self, name):\n    return 'hi ' + name\n```"
    assert shape_code(answer, selection, METHOD_DOC, start, end, "python") == (
        "    def greet(self, name):\n        return 'hi ' + name\n\n"
    )


def test_an_answer_already_indented_like_the_document_is_not_indented_twice():
    selection, start, end = _method_selection()
    answer = "    def greet(self, name):\n        return 'hi ' + name\n"
    assert shape_code(answer, selection, METHOD_DOC, start, end, "python") == (
        "    def greet(self, name):\n        return 'hi ' + name\n\n"
    )


def test_a_spaces_answer_takes_the_tabs_of_a_tab_indented_document():
    doc = "package main\n\nfunc f(x bool) int {\n\tif x {\n\t\treturn 1\n\t}\n\treturn 0\n}\n"
    start, end = doc.index("\tif"), doc.index("\treturn 0")
    answer = "```go\nif x {\n    return 2\n}\n```"
    assert shape_code(answer, doc[start:end], doc, start, end, "go") == "\tif x {\n\t\treturn 2\n\t}\n"


def test_a_tabs_answer_takes_the_spaces_of_a_space_indented_document():
    selection, start, end = _method_selection()
    answer = "def greet(self, name):\n\treturn 'hi ' + name"
    assert shape_code(answer, selection, METHOD_DOC, start, end, "python") == (
        "    def greet(self, name):\n        return 'hi ' + name\n\n"
    )


def test_a_selection_starting_after_the_indentation_keeps_it_in_the_document():
    start = METHOD_DOC.index("def greet")
    end = METHOD_DOC.index("\n    def leave") + 1
    for answer in (
        "def greet(self, name):\n    return 'hi ' + name",  # re-indented from column 0
        "def greet(self, name):\n        return 'hi ' + name",  # the selection's own shape
    ):
        shaped = shape_code(answer, METHOD_DOC[start:end], METHOD_DOC, start, end, "python")
        assert shaped == "def greet(self, name):\n        return 'hi ' + name\n\n", answer


def test_the_selections_trailing_newline_state_is_kept():
    doc = "a = 1\nb = 2\n"
    assert shape_code("a = 3\n", "a = 1", doc, 0, 5, "python") == "a = 3"
    assert shape_code("a = 3", "a = 1\n", doc, 0, 6, "python") == "a = 3\n"


def test_a_crlf_document_gets_crlf_line_breaks():
    doc = "if x:\r\n    a = 1\r\n    b = 2\r\n"
    start = doc.index("    a")
    shaped = shape_code("```python\na = 1\nb = 3\n```", doc[start:], doc, start, len(doc), "python")
    assert shaped == "    a = 1\r\n    b = 3\r\n"


def test_an_answer_identical_to_the_selection_is_nothing_to_apply():
    selection, start, end = _method_selection()
    answer = "```python\ndef greet(self, name):\n    return 'hi ' + nam\n```\nLooks right to me."
    assert shape_code(answer, selection, METHOD_DOC, start, end, "python") is None


def test_an_empty_answer_is_nothing_to_apply():
    selection, start, end = _method_selection()
    for answer in ("", "   \n\n", "```python\n```"):
        assert shape_code(answer, selection, METHOD_DOC, start, end, "python") is None, repr(answer)


def test_a_selection_that_is_not_the_documents_text_is_refused():
    with pytest.raises(ValueError, match="document changed"):
        shape_code("x = 2", "x = 1", "y = 1\n", 0, 5, "python")
