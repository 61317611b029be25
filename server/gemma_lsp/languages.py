"""The languages the server knows: one table from LSP languageId to what each part needs.

File suffixes (for callers without an editor), comment and string syntax (for the lexer that
shapes edits), the conventional indentation, the tree-sitter grammar (for chunking memories)
and the markdown fence name. Standard library only; imports nothing of gemma_lsp.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    """One language, keyed by its LSP languageId."""

    id: str
    suffixes: tuple[str, ...]  # lower case, with the dot
    fence: str  # the info string of a markdown code block
    line_comment: str | None = None
    block_comment: tuple[str, str] | None = None  # (opening, closing)
    quotes: tuple[str, ...] = ()  # string delimiters, longest first
    multiline_quotes: frozenset[str] = frozenset()  # delimiters whose strings may span lines
    raw_quotes: frozenset[str] = frozenset()  # delimiters whose strings have no backslash escapes
    indent: str = "    "  # one indentation level by the language's convention
    grammar: str | None = None  # the tree-sitter grammar module
    grammar_function: str = "language"  # the grammar module's function returning the language


_C_COMMENTS = {"line_comment": "//", "block_comment": ("/*", "*/")}
_C_QUOTES = {**_C_COMMENTS, "quotes": ('"', "'")}
_JS = {**_C_COMMENTS, "quotes": ('"', "'", "`"), "multiline_quotes": frozenset({"`"}), "indent": "  "}
_TRIPLE = frozenset({'"""', "'''"})

LANGUAGES: dict[str, Language] = {
    language.id: language
    for language in (
        Language("python", (".py", ".pyi"), "python", line_comment="#", quotes=('"""', "'''", '"', "'"),
                 multiline_quotes=_TRIPLE, grammar="tree_sitter_python"),
        Language("javascript", (".js", ".mjs", ".cjs"), "javascript", **_JS, grammar="tree_sitter_javascript"),
        Language("javascriptreact", (".jsx",), "jsx", **_JS, grammar="tree_sitter_javascript"),
        Language("typescript", (".ts",), "typescript", **_JS, grammar="tree_sitter_typescript",
                 grammar_function="language_typescript"),
        Language("typescriptreact", (".tsx",), "tsx", **_JS, grammar="tree_sitter_typescript",
                 grammar_function="language_tsx"),
        Language("go", (".go",), "go", **_C_COMMENTS, quotes=('"', "'", "`"), multiline_quotes=frozenset({"`"}),
                 raw_quotes=frozenset({"`"}), indent="\t", grammar="tree_sitter_go"),
        # ' starts a char literal only when one closes it ('a', '\n'); 'a alone is a lifetime.
        Language("rust", (".rs",), "rust", **_C_COMMENTS, quotes=('"',), multiline_quotes=frozenset({'"'}),
                 grammar="tree_sitter_rust"),
        Language("c", (".c", ".h"), "c", **_C_QUOTES),
        Language("cpp", (".cc", ".cpp", ".hpp"), "cpp", **_C_QUOTES),
        Language("java", (".java",), "java", **_C_QUOTES),
        Language("kotlin", (".kt",), "kotlin", **_C_COMMENTS, quotes=('"""', '"', "'"),
                 multiline_quotes=frozenset({'"""'}), raw_quotes=frozenset({'"""'})),
        Language("ruby", (".rb",), "ruby", line_comment="#", quotes=('"', "'"), indent="  "),
        Language("php", (".php",), "php", **_C_QUOTES),
        Language("csharp", (".cs",), "csharp", **_C_QUOTES),
        Language("swift", (".swift",), "swift", **_C_COMMENTS, quotes=('"""', '"'),
                 multiline_quotes=frozenset({'"""'})),
        Language("lua", (".lua",), "lua", line_comment="--", block_comment=("--[[", "]]"), quotes=('"', "'")),
        Language("shellscript", (".sh",), "sh", line_comment="#", quotes=('"', "'"),
                 multiline_quotes=frozenset({'"', "'"}), raw_quotes=frozenset({"'"}), indent="  "),
        Language("markdown", (".md",), "markdown", block_comment=("<!--", "-->"), indent="  "),
        Language("json", (".json",), "json", quotes=('"',), indent="  "),
        Language("toml", (".toml",), "toml", line_comment="#", quotes=('"""', "'''", '"', "'"),
                 multiline_quotes=_TRIPLE, raw_quotes=frozenset({"'''", "'"})),
        Language("yaml", (".yaml", ".yml"), "yaml", line_comment="#", quotes=('"', "'"),
                 multiline_quotes=frozenset({'"', "'"}), raw_quotes=frozenset({"'"}), indent="  "),
        Language("sql", (".sql",), "sql", line_comment="--", block_comment=("/*", "*/"), quotes=("'", '"'),
                 multiline_quotes=frozenset({"'", '"'})),
    )
}  # fmt: skip

_BY_SUFFIX = {suffix: language for language in LANGUAGES.values() for suffix in language.suffixes}


def language_for_path(path: str) -> Language | None:
    """The language of a file name or path by its suffix (any case), or None when unknown."""
    dot = path.rfind(".")
    return _BY_SUFFIX.get(path[dot:].lower()) if dot >= 0 else None


def language_by_id(language_id: str) -> Language | None:
    """The language of an LSP languageId, or None when unknown."""
    return LANGUAGES.get(language_id)
