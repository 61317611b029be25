"""Micro-benchmark of the memory search index on synthetic code chunks (no model, no store).

``python -m gemma_lsp.bench.search [n_chunks ...]`` prints one JSON line per size.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from gemma_lsp.memory import Memory
from gemma_lsp.memory.search import SearchIndex

__all__ = ["bench_search", "synthetic_chunks"]

_BENCH_WORDS = (
    "parse http response request client server handler config settings user account session token "
    "cache store memory index search query result value item list dict map key name path file line "
    "buffer stream reader writer encode decode json yaml load save open close start stop run build "
    "test check validate error warning log debug info count size length offset range position"
).split()


class _RandomEmbedder:
    """Random vectors of ``dim``: the dense half's cost without a model."""

    def __init__(self, dim: int, seed: int) -> None:
        self.dim, self.rng = dim, np.random.default_rng(seed)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)


def synthetic_chunks(n_chunks: int, namespace: str = "bench", seed: int = 0) -> list[Memory]:
    """``n_chunks`` code-like chunks (~20 lines each) with realistic identifier repetition."""
    rng = np.random.default_rng(seed)
    words = _BENCH_WORDS
    idents = [f"{a}_{b}" if i % 2 else f"{a}{b.capitalize()}{c.capitalize()}"
              for i, (a, b, c) in enumerate(rng.choice(words, size=(4000, 3)))]  # fmt: skip
    zipf = rng.zipf(1.3, size=n_chunks * 60) % len(idents)
    out = []
    for i in range(n_chunks):
        ids = [idents[j] for j in zipf[i * 60 : (i + 1) * 60]]
        lines = [f"def {ids[0]}(self, {ids[1]}, {ids[2]}={i}):"]
        lines += [f"    {ids[j]} = self.{ids[j + 1]}({ids[j + 2]}, {j})" for j in range(3, 57, 3)]
        lines.append(f"    return {ids[57]}")
        out.append(Memory(namespace=namespace, tier="semantic", kind="code_chunk", text="\n".join(lines),
                          created_at=1.0e9 + i))  # fmt: skip
    return out


def bench_search(n_chunks: int, *, dim: int = 384, queries: int = 50, k: int = 10, seed: int = 0) -> dict[str, float]:
    """Time the index on ``n_chunks`` synthetic code chunks (random unit vectors of ``dim`` for the
    dense half). Returns seconds for building and milliseconds (median / p95) per query:
    lexical only (a short and a ~20-line query) and hybrid, plus an incremental add."""
    memories = synthetic_chunks(n_chunks, seed=seed)
    rng = np.random.default_rng(seed + 1)
    result: dict[str, float] = {"n_chunks": float(n_chunks)}

    t = time.perf_counter()
    lexical = SearchIndex()
    lexical.rebuild(memories)
    result["build_lexical_s"] = time.perf_counter() - t

    t = time.perf_counter()
    hybrid = SearchIndex(embedder=_RandomEmbedder(dim, seed))
    hybrid.rebuild(memories)
    result["build_hybrid_s"] = time.perf_counter() - t

    picks = rng.integers(0, n_chunks, size=queries)
    short_q = [" ".join(memories[i].text.split("\n")[0].split("(")[0].split()[1:]) for i in picks]
    long_q = [memories[i].text for i in picks]

    def timed(index: SearchIndex, qs: list[str]) -> tuple[float, float]:
        times = []
        for q in qs:
            t0 = time.perf_counter()
            index.search(q, k=k, namespace="bench", now=2.0e9)
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.median(times)), float(np.percentile(times, 95))

    result["lexical_short_ms_p50"], result["lexical_short_ms_p95"] = timed(lexical, short_q)
    result["lexical_long_ms_p50"], result["lexical_long_ms_p95"] = timed(lexical, long_q)
    result["hybrid_long_ms_p50"], result["hybrid_long_ms_p95"] = timed(hybrid, long_q)

    extra = synthetic_chunks(100, namespace="bench", seed=seed + 7)
    t = time.perf_counter()
    for m in extra:
        lexical.add(m)
    result["add_ms_each"] = (time.perf_counter() - t) * 1000 / len(extra)
    result["lexical_long_after_adds_ms_p50"], _ = timed(lexical, long_q[:10])
    return result


if __name__ == "__main__":  # python -m gemma_lsp.bench.search [n_chunks ...]
    for n in [int(a) for a in sys.argv[1:]] or [10_000, 100_000]:
        print(json.dumps({k: round(v, 3) for k, v in bench_search(n).items()}))
