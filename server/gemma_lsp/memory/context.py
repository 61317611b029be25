"""Memories as prompt context: the best ones that fit a token budget, each under a source header.

``build_context(hits, budget, count_tokens)`` is what prompt templates receive as ``rag_context``
and ``build_recent(memories, budget, count_tokens)`` as ``rag_recent``; ``retrieve_chunks`` feeds
inline completion (the completion side wraps it into its ``Retriever``: completion imports
memory, never the reverse).

Selection, in rank order:

1. Skip a chunk that repeats one already chosen: the same text (ignoring surrounding whitespace),
   text contained in a chosen chunk, or a source range overlapping a chosen chunk's range in the
   same document.
2. Whole chunks first: take every chunk that fits whole in what is left of the budget (one that
   does not fit is passed over, so a smaller, lower-ranked one may still fit).
3. Then at most one more: the best chunk passed over for size, cut at a line boundary to what is
   left, ending with a truncation marker. Only that last chunk is ever truncated.

``count_tokens`` is the caller's tokenizer (the model's, or ``estimate_tokens``); the result never
exceeds the budget by its count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from gemma_lsp.uri import uri_to_path_str

from .model import Memory

__all__ = [
    "ContextChunk", "TRUNCATION_MARKER", "build_context", "build_recent", "estimate_tokens", "render",
    "retrieve_chunks", "select_chunks", "source_label", "source_path",
]  # fmt: skip

CountTokens = Callable[[str], int]
TRUNCATION_MARKER = "… (truncated)"


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters per token for code), for when no model is loaded."""
    return (len(text) * 2 + 6) // 7


def source_path(uri: str, root: str | None = None) -> str:
    """A document URI as a path, relative to ``root`` (a path or ``file://`` URI) when inside it."""
    path = uri_to_path_str(uri) or uri
    if root:
        base = uri_to_path_str(root) or root
        try:
            return str(PurePosixPath(path).relative_to(PurePosixPath(base)))
        except ValueError:
            pass
    return path


def source_label(memory: Memory, root: str | None = None) -> str:
    """``path/to/file.py:12-40`` (1-based lines) for a memory with a source, else ``note (tag1, tag2)``."""
    if memory.source is not None:
        path = source_path(memory.source.uri, root)
        rng = memory.source.range
        if rng is None:
            return path
        first, last = rng.start.line + 1, rng.last_line + 1
        return f"{path}:{first}" if last <= first else f"{path}:{first}-{last}"
    label = memory.kind.value
    return f"{label} ({', '.join(memory.tags)})" if memory.tags else label


@dataclass(frozen=True)
class ContextChunk:
    """One chosen chunk: its label (see ``source_label``), its text, and whether it was cut."""

    label: str
    text: str
    memory: Memory | None = None
    truncated: bool = False

    def block(self, comment: str = "#") -> str:
        return f"{comment} {self.label}\n{self.text}\n"


def _memory_of(item: Any) -> Memory:
    return item if isinstance(item, Memory) else item.memory  # a search Hit


def _line_span(memory: Memory) -> tuple[str, int, int] | None:
    if memory.source is None or memory.source.range is None:
        return None
    rng = memory.source.range
    return memory.source.uri, rng.start.line, max(rng.start.line, rng.end.line)


def _repeats(memory: Memory, text: str, chosen: list[tuple[Memory, str]]) -> bool:
    span = _line_span(memory)
    for other, other_text in chosen:
        if text == other_text or text in other_text:
            return True
        other_span = _line_span(other)
        if span and other_span and span[0] == other_span[0] and span[1] <= other_span[2] and other_span[1] <= span[2]:
            return True
    return False


def select_chunks(
    items: Iterable[Any],
    budget_tokens: int,
    count_tokens: CountTokens,
    *,
    label: Callable[[Memory], str] = source_label,
    block: Callable[[ContextChunk], str] = ContextChunk.block,
    separator: str = "\n",
    marker: str = TRUNCATION_MARKER,
    truncate: bool = True,
) -> list[ContextChunk]:
    """The chunks to show, in rank order (a truncated one last). ``items``: search hits or memories,
    best first. ``block(chunk)`` is how one chunk is rendered; blocks are joined by ``separator``;
    the total, counted by ``count_tokens``, stays within ``budget_tokens``."""
    if budget_tokens <= 0:
        return []
    sep_cost = count_tokens(separator) if separator else 0
    left = budget_tokens
    chosen: list[ContextChunk] = []
    seen: list[tuple[Memory, str]] = []
    passed_over: list[tuple[Memory, str]] = []
    for item in items:
        memory = _memory_of(item)
        text = memory.text.strip("\n").rstrip()
        if not text.strip() or _repeats(memory, text.strip(), seen):
            continue
        chunk = ContextChunk(label(memory), text, memory)
        cost = count_tokens(block(chunk)) + (sep_cost if chosen else 0)
        if cost <= left:
            chosen.append(chunk)
            seen.append((memory, text.strip()))
            left -= cost
        else:
            passed_over.append((memory, text))
    if truncate:
        for memory, text in passed_over:
            if _repeats(memory, text.strip(), seen):
                continue
            cut = _truncated(memory, text, left - (sep_cost if chosen else 0), count_tokens, label, block, marker)
            if cut is not None:
                chosen.append(cut)
            break  # only the best chunk passed over is tried
    # token counts of parts need not add up exactly (merges across a join): check the whole
    while chosen and count_tokens(render(chosen, block=block, separator=separator)) > budget_tokens:
        chosen.pop()
    return chosen


def _truncated(memory, text, left, count_tokens, label, block, marker) -> ContextChunk | None:
    """``text`` cut after as many whole lines as fit in ``left`` tokens, with the marker; None if not one."""
    lines = text.split("\n")
    name = label(memory)

    def make(n: int) -> ContextChunk:
        return ContextChunk(name, "\n".join(lines[:n]).rstrip() + "\n" + marker, memory, truncated=True)

    lo, hi = 0, len(lines) - 1  # largest n in [1, len-1] that fits; 0 = none
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(block(make(mid))) <= left:
            lo = mid
        else:
            hi = mid - 1
    return make(lo) if lo >= 1 and count_tokens(block(make(lo))) <= left else None


def render(chunks: Sequence[ContextChunk], *, block: Callable[[ContextChunk], str] = ContextChunk.block, separator: str = "\n") -> str:
    return separator.join(block(c) for c in chunks)


def build_context(
    hits: Iterable[Any],
    budget_tokens: int,
    count_tokens: CountTokens = estimate_tokens,
    *,
    root: str | None = None,
    comment: str = "#",
) -> str:
    """``rag_context``: the best hits (search ``Hit``s or memories, best first) as one prompt block,
    each chunk under ``# path:first-last`` (or ``# note (tags)``), separated by blank lines; "" if none fit."""
    chunks = select_chunks(
        hits, budget_tokens, count_tokens, label=lambda m: source_label(m, root), block=lambda c: c.block(comment)
    )
    return render(chunks, block=lambda c: c.block(comment))


def build_recent(
    memories: Iterable[Memory],
    budget_tokens: int,
    count_tokens: CountTokens = estimate_tokens,
    *,
    root: str | None = None,
    comment: str = "#",
    now: float | None = None,
) -> str:
    """``rag_recent``: recent episodic memories (newest first, as ``store.query`` returns them); the
    newest that fit are shown oldest first, each under ``# <kind>, <age> ago[: path:lines]``."""
    now = time.time() if now is None else now

    def label(m: Memory) -> str:
        head = f"{m.kind.value}, {_age(now - m.created_at)} ago"
        return f"{head}: {source_label(m, root)}" if m.source is not None else head

    chunks = select_chunks(memories, budget_tokens, count_tokens, label=label, block=lambda c: c.block(comment))
    # the truncated one (if any) is the oldest shown; chronological order puts it first
    return render(list(reversed(chunks)), block=lambda c: c.block(comment))


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def retrieve_chunks(
    index: Any,
    query: str,
    budget_tokens: int,
    count_tokens: CountTokens = estimate_tokens,
    namespace: str | None = None,
    *,
    k: int = 20,
    root: str | None = None,
    exclude_paths: Iterable[str] = (),
    tiers: Iterable[Any] | None = None,
    kinds: Iterable[Any] | None = None,
    now: float | None = None,
) -> list[tuple[str, str]]:
    """For inline completion: ``(path, text)`` pairs, best first, within ``budget_tokens`` counted as
    ``path + "\\n" + text + "\\n"`` per chunk (what a ``<|file_separator|>path`` header costs, roughly).

    ``path`` is the source path (relative to ``root``) without line numbers, or ``note (tags)`` for
    a memory without a source; chunks from ``exclude_paths`` (the file being completed, as a path or a
    URI) are left out.
    Synchronous: run it on a worker thread under the completion's time budget.
    """
    if budget_tokens <= 0 or not query.strip():
        return []
    excluded = set(exclude_paths)

    def path_of(m: Memory) -> str:
        return source_path(m.source.uri, root) if m.source is not None else source_label(m, root)

    hits = index.search(query, k=k, namespace=namespace, tiers=tiers, kinds=kinds, now=now)
    hits = [
        h for h in hits
        if path_of(h.memory) not in excluded and (h.memory.source is None or h.memory.source.uri not in excluded)
    ]  # fmt: skip
    chunks = select_chunks(
        hits, budget_tokens, count_tokens, label=path_of, block=lambda c: f"{c.label}\n{c.text}\n", separator=""
    )
    return [(c.label, c.text) for c in chunks]
