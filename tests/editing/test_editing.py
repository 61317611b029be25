"""The shared edit-shaping pieces: the lexer, indentation styles and restyling, line helpers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gemma_lsp.editing.edits import line_break_of, rest_of_line, split_lines, with_lf_line_breaks
from gemma_lsp.editing.indentation import IndentStyle, detect_style, indent_width, indentation_of, restyle
from gemma_lsp.editing.lexing import Lex, code_part, opens_block, scan, state_at, syntax_for
from gemma_lsp.languages import language_by_id

PYTHON = syntax_for(language_by_id("python"))
GO = syntax_for(language_by_id("go"))
RUST = syntax_for(language_by_id("rust"))


def test_state_in_a_string_and_its_open_brackets():
    lex, stack = state_at('print(f(x, "a (b', 16, PYTHON)
    assert lex.in_string and lex.end == '"'
    assert stack == ["(", "("]


def test_state_in_a_python_triple_quoted_string_across_lines():
    doc = 'x = """first\nsecond'
    lex, stack = state_at(doc, len(doc), PYTHON)
    assert lex.in_string and lex.end == '"""' and stack == []


def test_state_in_comments():
    lex, _ = state_at("x = [1  # open [", 16, PYTHON)
    assert lex.end == "\n" and not lex.string
    lex, stack = state_at("f(/* a ( b", 10, GO)
    assert lex.end == "*/" and not lex.in_string and stack == ["("]


def test_state_after_a_closed_string_is_code():
    lex, stack = state_at("s := `raw \\` + f(", 17, GO)
    assert lex.end is None and stack == ["("]


def test_rust_lifetimes_and_char_literals_are_not_strings():
    kinds = [kind for _, kind, _ in scan("fn f<'a>(c: char) { g('(') }", Lex(), RUST)]
    assert kinds == ["open", "close", "open", "open", "close", "close"]


def test_unknown_languages_are_lexed_as_c_like_code():
    assert syntax_for(None) == syntax_for(language_by_id("ruby"))
    lex, _ = state_at("x = 1 // note", 13, syntax_for(None))
    assert lex.end == "\n"


def test_code_part_and_opens_block():
    assert code_part("if x:  # done (", PYTHON) == "if x:  "
    assert opens_block("if x:  # note", PYTHON)
    assert opens_block("func f() { // body", GO)
    assert not opens_block("x = ':'", PYTHON)
    assert not opens_block(None, PYTHON)


@pytest.mark.parametrize(
    ("doc", "language_id", "style"),
    [
        ("func f() {\n\tx := 1\n\tif x {\n\t\ty()\n\t}\n}\n", "go", IndentStyle("\t", 4)),
        ("def f():\n  x = 1\n  if x:\n    y()\n", "python", IndentStyle(" ", 2)),
        ("class A:\n    def f(self):\n        pass\n", "python", IndentStyle(" ", 4)),
        ("x = 1\ny = 2\n", "python", IndentStyle(None, 4)),
        ("package main\n", "go", IndentStyle("\t", 4)),  # no evidence: gofmt's tabs
    ],
)
def test_detect_style(doc, language_id, style):
    assert detect_style(doc, 0, language_by_id(language_id)) == style


def test_indentation_widths():
    assert indentation_of("\t  x = 1  ") == "\t  "
    assert indent_width("\t  ") == 6
    assert IndentStyle("\t", 4).make(6) == "\t  "
    assert IndentStyle(" ", 2).make(6) == "      "


def test_restyle_spaces_to_tabs_and_tabs_to_spaces():
    lines = ["if x {", "    y()", "        z()", "}"]
    assert restyle(lines, IndentStyle("\t", 4), first_line_indented=True) == ["if x {", "\ty()", "\t\tz()", "}"]
    odd = ["    a", "     b"]  # not a 2-column unit: leftover columns stay spaces
    assert restyle(odd, IndentStyle("\t", 4), first_line_indented=True) == ["\ta", "\t b"]
    two = ["  a", "    b"]
    assert restyle(two, IndentStyle("\t", 4), first_line_indented=True) == ["\ta", "\t\tb"]
    assert restyle(["\tif x:", "\t\ty"], IndentStyle(" ", 2), first_line_indented=True) == ["  if x:", "    y"]
    assert restyle(["    same"], IndentStyle(None, 4), first_line_indented=True) == ["    same"]


def test_restyle_leaves_a_first_line_that_continues_text_alone():
    lines = ["  + 1", "    y"]
    assert restyle(lines, IndentStyle("\t", 4), first_line_indented=False) == ["  + 1", "\ty"]


def test_line_helpers():
    assert rest_of_line("ab\r\ncd", 1) == "b"
    assert split_lines("a\r\nb\rc\n") == ["a", "b", "c", ""]
    assert line_break_of("a\r\nb\r\nc\n") == "\r\n" and line_break_of("a\nb\r\n") == "\n"
    assert with_lf_line_breaks("a\r\nb", 4) == ("a\nb", 3)
    assert with_lf_line_breaks("a\r\nb", 2) is None


def test_editing_imports_nothing_of_the_server_but_the_language_table():
    code = (
        "import sys, gemma_lsp.editing.edits, gemma_lsp.editing.indentation, gemma_lsp.editing.lexing\n"
        "ours = {m for m in sys.modules if m.startswith('gemma_lsp.')}\n"
        "allowed = {'gemma_lsp.languages', 'gemma_lsp.editing', 'gemma_lsp.editing.edits',"
        " 'gemma_lsp.editing.indentation', 'gemma_lsp.editing.lexing'}\n"
        "assert ours <= allowed, ours - allowed\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
