"""Chunks that follow the code's own structure where a grammar is available.

With tree-sitter and a grammar wheel for the file's language (Python, JavaScript, TypeScript,
Go, Rust), a chunk is a run of whole top-level definitions: small neighbours are merged up to
the size limit, a definition larger than the limit is cut into line windows. Comments and
decorators just above a definition stay with it. Other files, or when tree-sitter is missing,
get plain overlapping line windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from gemma_lsp.languages import language_for_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkSpec:
    text: str
    start_line: int  # 0-based, inclusive
    end_line: int  # 0-based, exclusive


def line_chunks(text: str, size: int, overlap: int, first_line: int = 0) -> list[ChunkSpec]:
    """Windows of ``size`` lines, each starting ``size - overlap`` lines after the previous."""
    lines = text.splitlines(keepends=True)
    step = max(1, size - overlap)
    chunks = []
    for start in range(0, max(1, len(lines)), step):
        body = "".join(lines[start : start + size])
        if body.strip():
            chunks.append(ChunkSpec(body, first_line + start, first_line + min(len(lines), start + size)))
        if start + size >= len(lines):
            break
    return chunks


@lru_cache(maxsize=None)
def _parser(suffix: str):
    language = language_for_path(suffix)
    if language is None or language.grammar is None:
        return None
    try:
        import importlib

        import tree_sitter

        module = importlib.import_module(language.grammar)
        return tree_sitter.Parser(tree_sitter.Language(getattr(module, language.grammar_function)()))
    except Exception as exc:  # noqa: BLE001 - no grammar: line windows it is
        log.debug("no tree-sitter grammar for %s: %s", suffix, exc)
        return None


def has_grammar(suffix: str) -> bool:
    return _parser(suffix.lower()) is not None


def syntax_chunks(suffix: str, text: str, max_lines: int, overlap: int) -> list[ChunkSpec] | None:
    """Chunks along top-level definitions, or None when no grammar parses this file."""
    parser = _parser(suffix.lower())
    if parser is None:
        return None
    data = text.encode("utf-8")
    try:
        tree = parser.parse(data)
    except Exception:  # noqa: BLE001
        return None
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    # Each top-level node owns the lines from the end of the previous node to its own end, so
    # leading comments and decorators stay with the definition below them.
    spans: list[tuple[int, int]] = []
    start = 0
    for node in tree.root_node.children:
        if "comment" in node.type:
            continue  # a comment belongs to the definition below it
        end = node.end_point[0] + 1
        if end > start:
            spans.append((start, end))
            start = end
    if start < len(lines):
        spans.append((start, len(lines)))
    chunks: list[ChunkSpec] = []
    group_start, group_end = None, None
    for s, e in spans:
        if e - s > max_lines:
            if group_start is not None:
                chunks.append(_chunk(lines, group_start, group_end))
                group_start = None
            chunks.extend(line_chunks("".join(lines[s:e]), max_lines, overlap, first_line=s))
            continue
        if group_start is None:
            group_start, group_end = s, e
        elif e - group_start <= max_lines:
            group_end = e
        else:
            chunks.append(_chunk(lines, group_start, group_end))
            group_start, group_end = s, e
    if group_start is not None:
        chunks.append(_chunk(lines, group_start, group_end))
    return [c for c in chunks if c.text.strip()]


def _chunk(lines: list[str], start: int, end: int) -> ChunkSpec:
    return ChunkSpec("".join(lines[start:end]), start, end)


def chunk_file(suffix: str, text: str, max_lines: int, overlap: int) -> list[ChunkSpec]:
    """Syntax-aware chunks where a grammar is available, line windows otherwise."""
    chunks = syntax_chunks(suffix, text, max_lines, overlap)
    return chunks if chunks is not None else line_chunks(text, max_lines, overlap)
