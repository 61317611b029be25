"""The language table: lookups by file suffix and by LSP languageId, and the grammars it names."""

from __future__ import annotations

import importlib

import pytest

from gemma_lsp.languages import LANGUAGES, language_by_id, language_for_path


@pytest.mark.parametrize(
    ("path", "language_id"),
    [
        ("main.py", "python"),
        ("stubs/os.pyi", "python"),
        ("src/App.TSX", "typescriptreact"),
        ("lib.rs", "rust"),
        ("cmd/main.go", "go"),
        ("index.mjs", "javascript"),
        ("config.YML", "yaml"),
        (".py", "python"),
    ],
)
def test_language_for_path_by_suffix_in_any_case(path, language_id):
    language = language_for_path(path)
    assert language is not None and language.id == language_id


@pytest.mark.parametrize("path", ["README", "notes.txt", "archive.tar.gz", "", "dir.py/file"])
def test_language_for_path_unknown_is_none(path):
    assert language_for_path(path) is None


def test_language_by_id():
    assert language_by_id("go").indent == "\t"
    assert language_by_id("python").line_comment == "#"
    assert language_by_id("typescriptreact").grammar_function == "language_tsx"
    assert language_by_id("javascriptreact").fence == "jsx"
    assert language_by_id("") is None
    assert language_by_id("cobol") is None


def test_table_is_consistent():
    suffixes = [suffix for language in LANGUAGES.values() for suffix in language.suffixes]
    assert len(suffixes) == len(set(suffixes)), "a suffix belongs to one language"
    for language_id, language in LANGUAGES.items():
        assert language.id == language_id
        assert all(s.startswith(".") and s == s.lower() for s in language.suffixes)
        assert list(language.quotes) == sorted(language.quotes, key=len, reverse=True), "longest first"
        assert (language.multiline_quotes | language.raw_quotes) <= set(language.quotes)


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES.values() if lang.grammar], ids=lambda lang: lang.id)
def test_grammar_modules_are_importable(language):
    module = importlib.import_module(language.grammar)
    assert callable(getattr(module, language.grammar_function))
