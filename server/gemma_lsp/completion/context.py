"""Extra context from other files: a ring buffer of chunks the user recently worked in.

Chunks (a window of lines) are taken from files when they are opened or saved, and from the
file the user leaves when a completion is asked in another one. Near-duplicates replace older
chunks; the oldest fall out first. The prompt places them before the current file, each under
a ``<|file_separator|>path`` header, oldest first: a new chunk only appends, so the KV cache
keeps the ones before it. They change rarely, and the server evaluates them in the background
when the engine is idle, so a keystroke pays only for what changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Chunk:
    path: str
    text: str

    def lines(self) -> frozenset[str]:
        return frozenset(line.strip() for line in self.text.splitlines() if line.strip())


def similarity(a: Chunk, b: Chunk) -> float:
    """Jaccard similarity of the two chunks' non-empty lines."""
    la, lb = a.lines(), b.lines()
    if not la or not lb:
        return 0.0
    return len(la & lb) / len(la | lb)


MAX_CHUNK_CHARS = 4096
"""The most text a chunk or a retrieval query holds: lines of minified code or data can be
megabytes long, and all of it would be tokenized on the keystroke path."""


class RingContext:
    """At most ``max_chunks`` chunks of ``chunk_lines`` lines, deduplicated by similarity."""

    def __init__(self, max_chunks: int = 16, chunk_lines: int = 32, duplicate_at: float = 0.9) -> None:
        self.max_chunks = max_chunks
        self.chunk_lines = chunk_lines
        self.duplicate_at = duplicate_at
        self._chunks: list[Chunk] = []
        self.version = 0  # bumped on every change, so callers can tell the prompt moved

    def add(self, path: str, text: str, line: int = 0) -> bool:
        """Take the chunk of ``text`` centred on ``line``; True when the ring changed."""
        lines = text.splitlines(keepends=True)
        if not lines:
            return False
        half = self.chunk_lines // 2
        start = max(0, min(line - half, len(lines) - self.chunk_lines))
        body = "".join(lines[start : start + self.chunk_lines])[:MAX_CHUNK_CHARS]
        if not body.strip():
            return False
        chunk = Chunk(path, body)
        if any(old == chunk for old in self._chunks):
            return False
        kept = [old for old in self._chunks if similarity(old, chunk) < self.duplicate_at]
        kept.append(chunk)
        self._chunks = kept[-self.max_chunks :]
        self.version += 1
        return True

    def chunks(self, exclude_path: str | None = None) -> list[Chunk]:
        """The chunks, oldest first, leaving out the file being completed (it is in the prompt)."""
        return [c for c in self._chunks if c.path != exclude_path]

    def __len__(self) -> int:
        return len(self._chunks)


class Retriever(Protocol):
    """Where extra context can come from besides the ring (workspace memories fill this in).

    Given a query (the lines above the cursor) and a token budget, return the best chunks.
    The completion path waits for it only up to its time budget.
    """

    async def __call__(self, query: str, budget_tokens: int) -> list[Chunk]: ...


class RetrievalCache:
    """Retrieval results per query, and the query of a cursor: stable while a line is typed.

    The query is the few complete lines above the cursor's line, so typing on the current line
    asks nothing new and the retrieved chunks (which sit early in the prompt) do not move,
    which keeps the KV cache valid. A retrieval that misses the time budget keeps running and
    serves the next keystroke.
    """

    def __init__(self, retriever: Retriever, query_lines: int = 8, capacity: int = 64) -> None:
        self._retriever = retriever
        self._query_lines = query_lines
        self._capacity = capacity
        self._results: dict[str, list[Chunk]] = {}
        self._pending: dict[str, asyncio.Task] = {}
        self.timeouts = 0

    def query(self, text: str, offset: int) -> str:
        """The ``query_lines`` complete lines above the cursor's line (found from the cursor back,
        so the cost does not grow with the file)."""
        end = text.rfind("\n", 0, offset) + 1
        start = end
        for _ in range(self._query_lines):
            if start == 0:
                break
            start = text.rfind("\n", 0, start - 1) + 1
        return "\n".join(text[max(start, end - MAX_CHUNK_CHARS) : end].splitlines())

    async def chunks(self, text: str, offset: int, budget_tokens: int, timeout_s: float) -> list[Chunk]:
        query = self.query(text, offset)
        if not query.strip():
            return []
        if query in self._results:
            return self._results[query]
        task = self._pending.get(query)
        if task is None:
            task = asyncio.ensure_future(self._retriever(query, budget_tokens))
            self._pending[query] = task
            task.add_done_callback(lambda t, q=query: self._store(q, t))
        try:
            return list(await asyncio.wait_for(asyncio.shield(task), timeout_s))
        except asyncio.TimeoutError:
            self.timeouts += 1
            return []
        except Exception:  # noqa: BLE001 - extra context is optional; a broken retriever costs nothing
            return []

    def _store(self, query: str, task: asyncio.Task) -> None:
        self._pending.pop(query, None)
        if task.cancelled() or task.exception() is not None:
            return
        self._results[query] = list(task.result())
        while len(self._results) > self._capacity:
            self._results.pop(next(iter(self._results)))
