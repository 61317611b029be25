"""``gemma-lsp bench sampling``: time per token of our sampler chains against llama.cpp's.

For each preset and logit shape, both chains sample the same logit vectors in the same run, each
in its own loop of ``--repeats`` tokens after a short warm-up (interleaving them token by token
made ours ~2x slower: llama.cpp's sorts of a 3 MB token array evict our data). With ``--cold``
every token starts after a 64 MB write that evicts the caches, as the model's evaluation does
between two tokens in real use.

* ours: ``gemma_lsp.sampling.build_sampler(specs).sample(logits)``, everything included
  (validation, every stage, the draw);
* native: llama.cpp's sampler chain through llama-cpp-python, with the same samplers and
  parameters. Its time includes filling the ``llama_token_data`` array from the logits, which
  llama.cpp's own ``llama_sampler_sample`` does for every token too (here with numpy instead of
  a C loop), plus ``llama_sampler_apply``.

Logit shapes (262,144 tokens by default, Gemma 3's vocabulary):

* ``peaked``, like a trained model's next-token distribution: a bulk of N(0, 2.5) logits and 20
  tokens raised to 10..18 nats, so the top token has ~45% of the probability and the bulk ~7%;
* ``flat``: N(0, 1) logits, an entropy within 0.5 nat of uniform.

Eight different logit vectors per shape are cycled through. The penalties preset starts each
run with 64 random tokens of history, so its penalties apply. This module also provides the
native chain used by the parity tests (:class:`NativeChain`).

The report also gives a floor measured in the same run, ``floor_ms.exp_p50``: the median time of
one numpy float32 ``exp`` over a logit vector (a tenth of ``--repeats`` of them next to every
row, with the same cache treatment). Mirostat and typical-p need every token's probability, so
neither can take less than that; on the shared 2-core test machine it alone varies between
~0.33 and ~0.6 ms from run to run, which is why absolute figures should be read against it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np

from gemma_lsp.config.sampling import (
    DistributionSpec,
    DynamicTemperatureSpec,
    GreedySpec,
    MinPSpec,
    MirostatV2Spec,
    PenaltiesSpec,
    TemperatureSpec,
    TopKSpec,
    TopPSpec,
    TypicalSpec,
)
from gemma_lsp.engine.native import llama_cpp_available
from gemma_lsp.engine.native_sampling import NativeChain
from gemma_lsp.sampling import build_sampler

from .common import SuiteRun, suite_settings

GEMMA3_VOCAB = 262_144
SHAPES = ("peaked", "flat")
LOGIT_VECTORS = 8
WARMUP = 3
FLOOR_WHAT = "one numpy float32 exp over the vocabulary"

# The benchmark's presets are fixed here on purpose: the built-in config presets may be tuned
# later, and the figures must stay comparable from run to run.
BENCH_PRESETS: dict[str, list[Any]] = {
    "greedy": [GreedySpec()],
    "completion": [TopKSpec(k=40), MinPSpec(p=0.05), TemperatureSpec(temperature=0.2), DistributionSpec()],
    "balanced": [TopPSpec(p=0.95), MinPSpec(p=0.05), TemperatureSpec(temperature=0.8), DistributionSpec()],
    "dynatemp": [
        MinPSpec(p=0.05),
        DynamicTemperatureSpec(temperature=0.8, delta=0.5, exponent=1.0),
        DistributionSpec(),
    ],
    "mirostat": [TemperatureSpec(temperature=0.8), MirostatV2Spec(tau=5.0, eta=0.1)],
    "typical": [TypicalSpec(p=0.95), TemperatureSpec(temperature=0.8), DistributionSpec()],
    "penalties": [
        PenaltiesSpec(last_n=64, repeat=1.1),
        MinPSpec(p=0.05),
        TemperatureSpec(temperature=0.8),
        DistributionSpec(),
    ],
}


def make_logits(shape: str, vocab: int = GEMMA3_VOCAB, seed: int = 0) -> np.ndarray:
    """One float32 logit vector of the given shape (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if shape == "flat":
        return rng.normal(0.0, 1.0, vocab).astype(np.float32)
    if shape == "peaked":
        logits = rng.normal(0.0, 2.5, vocab).astype(np.float32)
        top = rng.choice(vocab, size=min(20, vocab), replace=False)
        logits[top] = np.linspace(18.0, 10.0, top.size, dtype=np.float32) + rng.normal(0, 0.3, top.size).astype(
            np.float32
        )
        return logits
    raise ValueError(f"unknown logit shape {shape!r}; choose one of {', '.join(SHAPES)}")


# ------------------------------------------------------------------------------ the benchmark


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered) * 1e3, 4), "p95": round(p95 * 1e3, 4)}


def _time_preset(
    specs: list[Any], vectors: list[np.ndarray], repeats: int, seed: int, cold: bool
) -> tuple[list[float], list[float]]:
    """Per-token seconds of ours and of llama.cpp's chain: each runs ``repeats`` tokens in its own
    loop (so neither runs right after the other has filled the caches with its own data), or,
    with ``cold``, every token starts after a 64 MB write that evicts the caches, as a model
    evaluation does between two tokens."""
    vocab = vectors[0].shape[0]
    flush = np.zeros(16 * 1024 * 1024, dtype=np.float32) if cold else None
    history = np.random.default_rng(seed).integers(0, vocab, 64)

    def run(sampler) -> list[float]:
        sampler.reset()
        for token in history:  # so the penalties preset has something to penalise
            sampler.accept(int(token))
        seconds: list[float] = []
        clock = time.perf_counter
        for step in range(WARMUP + repeats):
            logits = vectors[step % len(vectors)]
            if flush is not None:
                flush.fill(step)
            t0 = clock()
            token = sampler.sample(logits)
            t1 = clock()
            sampler.accept(token)
            if step >= WARMUP:
                seconds.append(t1 - t0)
        return seconds

    native = NativeChain(specs, vocab, seed=seed)
    try:
        return run(build_sampler(specs, seed=seed)), run(native)
    finally:
        native.close()


def _time_exp(vectors: list[np.ndarray], repeats: int, cold: bool) -> list[float]:
    """Seconds of one numpy float32 ``exp`` over a whole logit vector (into a reused buffer)."""
    out = np.empty_like(vectors[0])
    flush = np.zeros(16 * 1024 * 1024, dtype=np.float32) if cold else None
    seconds: list[float] = []
    clock = time.perf_counter
    for step in range(repeats):
        if flush is not None:
            flush.fill(step)
        t0 = clock()
        np.exp(vectors[step % len(vectors)], out=out)
        seconds.append(clock() - t0)
    return seconds


def run_sampling_bench(repeats: int = 100, vocab: int = GEMMA3_VOCAB, seed: int = 0, cold: bool = False) -> dict:
    """Time every preset on every shape; the JSON object that ``--json`` prints."""
    results = []
    exp_s: list[float] = []
    for shape in SHAPES:
        vectors = [make_logits(shape, vocab, seed=seed * 1000 + i) for i in range(LOGIT_VECTORS)]
        for preset, specs in BENCH_PRESETS.items():
            # the floor is sampled next to every row, so it sees the same machine as the rows
            exp_s += _time_exp(vectors, max(4, repeats // 10), cold)
            ours_s, native_s = _time_preset(specs, vectors, repeats, seed, cold)
            ours_ms, native_ms = _percentiles(ours_s), _percentiles(native_s)
            results.append(
                {
                    "preset": preset,
                    "shape": shape,
                    "ours_ms": ours_ms,
                    "native_ms": native_ms,
                    "ratio_p50": round(ours_ms["p50"] / native_ms["p50"], 4) if native_ms["p50"] else None,
                }
            )
    floor = {"exp_p50": _percentiles(exp_s)["p50"], "what": FLOOR_WHAT}
    caches = "cold" if cold else "warm"
    return {"vocab": vocab, "repeats": repeats, "caches": caches, "floor_ms": floor, "results": results}


def _table(report: dict) -> str:
    lines = [
        f"vocabulary {report['vocab']}, {report['repeats']} tokens per row, {report['caches']} caches (ms per token)",
        f"{'preset':<12}{'shape':<8}{'ours p50':>10}{'ours p95':>10}{'native p50':>12}{'native p95':>12}{'ratio':>8}",
    ]
    for row in report["results"]:
        lines.append(
            f"{row['preset']:<12}{row['shape']:<8}{row['ours_ms']['p50']:>10.3f}{row['ours_ms']['p95']:>10.3f}"
            f"{row['native_ms']['p50']:>12.3f}{row['native_ms']['p95']:>12.3f}{row['ratio_p50']:>8.3f}"
        )
    ratios = [row["ratio_p50"] for row in report["results"]]
    lines.append(f"median ratio {statistics.median(ratios):.3f}")
    lines.append(f"floor: {report['floor_ms']['what']}, p50 {report['floor_ms']['exp_p50']:.3f} ms")
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> SuiteRun:
    parser = argparse.ArgumentParser(prog="gemma-lsp bench sampling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=100, help="timed tokens per preset and shape")
    parser.add_argument("--vocab", type=int, default=GEMMA3_VOCAB, help="vocabulary size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true", help="evict the caches before every token (64 MB write)")
    args = parser.parse_args(argv)
    if not llama_cpp_available():
        raise SystemExit("bench sampling needs llama-cpp-python (the native reference)")
    report = run_sampling_bench(repeats=args.repeats, vocab=args.vocab, seed=args.seed, cold=args.cold)
    return SuiteRun("sampling", report, _table(report), args.json, settings=suite_settings(args))


def main(argv: list[str] | None = None) -> int:
    print(run(argv).output())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
