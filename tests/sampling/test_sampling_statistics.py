"""Sampled frequencies match the target distribution (Pearson chi-square, fixed seeds).

The target is computed independently: the exact kept set (float64 references), then the softmax
of logit / temperature over it. The large-vocabulary cases exercise the draws that never
materialise the candidates (blocked inverse CDF, rejection from a lazy cut).
"""

from __future__ import annotations

import numpy as np
import pytest
from sampling_reference import (
    chi_square,
    chi_square_critical,
    exact_dynamic_temperature,
    exact_min_p,
    exact_top_k,
    exact_top_p,
    exact_typical,
)

from gemma_lsp.sampling import MirostatV2, build_sampler

DRAWS = 5_000


def _logits(n: int, shape: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if shape == "flat":
        return rng.normal(0, 1, n).astype(np.float32)
    logits = rng.normal(0, 2.0, n).astype(np.float32)
    logits[rng.choice(n, min(8, n), replace=False)] += np.linspace(6, 2, min(8, n), dtype=np.float32)
    return logits


def _softmax_over(logits: np.ndarray, kept: np.ndarray, temperature: float) -> np.ndarray:
    probs = np.zeros(logits.shape[0])
    x = logits[kept].astype(np.float64) / temperature
    w = np.exp(x - x.max())
    probs[kept] = w / w.sum()
    return probs


def _draw(sampler, logits: np.ndarray, draws: int = DRAWS) -> np.ndarray:
    counts = np.zeros(logits.shape[0], dtype=np.int64)
    for _ in range(draws):
        counts[sampler.sample(logits)] += 1
    return counts


def _assert_matches(counts: np.ndarray, probs: np.ndarray) -> None:
    assert counts[probs == 0].sum() == 0, "drew a token outside the kept set"
    live = probs > 0
    statistic, df = chi_square(counts[live], probs[live])
    if df == 0:
        return
    assert statistic < chi_square_critical(df), f"chi-square {statistic:.1f} with {df} degrees of freedom"


CASES = [
    ("temperature", [{"type": "temperature", "temperature": 0.7}], lambda l: _softmax_over(l, np.arange(l.size), 0.7)),
    (
        "top_k",
        [{"type": "top_k", "k": 10}, {"type": "temperature", "temperature": 1.3}],
        lambda l: _softmax_over(l, exact_top_k(l, 10), 1.3),
    ),
    (
        "min_p",
        [{"type": "min_p", "p": 0.1}, {"type": "temperature", "temperature": 0.8}],
        lambda l: _softmax_over(l, exact_min_p(l, 0.1), 0.8),
    ),
    ("top_p", [{"type": "top_p", "p": 0.9}], lambda l: _softmax_over(l, exact_top_p(l, 0.9), 1.0)),
    (
        "typical",
        [{"type": "typical", "p": 0.9}, {"type": "temperature", "temperature": 0.8}],
        lambda l: _softmax_over(l, exact_typical(l, 0.9), 0.8),
    ),
    (
        "dynamic_temperature",
        [{"type": "min_p", "p": 0.02}, {"type": "dynamic_temperature", "temperature": 0.9, "delta": 0.5}],
        lambda l: _softmax_over(
            l, exact_min_p(l, 0.02), exact_dynamic_temperature(l[exact_min_p(l, 0.02)], 0.9, 0.5, 1.0)
        ),
    ),
]


@pytest.mark.parametrize("name,specs,target", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("shape", ["peaked", "flat"])
def test_small_vocabulary_frequencies_match_the_distribution(name, specs, target, shape):
    logits = _logits(60, shape, seed=3)
    _assert_matches(_draw(build_sampler(specs, seed=12), logits), target(logits))


LARGE = 65_536
LARGE_CASES = [
    # a dense softmax over every token: blocked inverse CDF
    ("whole_vocabulary", [{"type": "temperature", "temperature": 0.8}], lambda l: _softmax_over(l, np.arange(l.size), 0.8)),
    # a large min-p set stays a lazy cut: uniform proposals, rejection
    (
        "large_min_p",
        [{"type": "min_p", "p": 0.05}, {"type": "temperature", "temperature": 0.8}],
        lambda l: _softmax_over(l, exact_min_p(l, 0.05), 0.8),
    ),
    # a large typical set stays a lazy cut: proposals from its weights, rejection for the temperature
    (
        "large_typical",
        [{"type": "typical", "p": 0.95}, {"type": "temperature", "temperature": 0.8}],
        lambda l: _softmax_over(l, exact_typical(l, 0.95), 0.8),
    ),
    (
        "large_top_p_then_min_p",
        [{"type": "top_p", "p": 0.95}, {"type": "min_p", "p": 0.05}, {"type": "temperature", "temperature": 0.8}],
        lambda l: _softmax_over(l, np.intersect1d(exact_top_p(l, 0.95), exact_min_p(l, 0.05)), 0.8),
    ),
]


@pytest.mark.parametrize("name,specs,target", LARGE_CASES, ids=[c[0] for c in LARGE_CASES])
def test_large_vocabulary_frequencies_match_the_distribution(name, specs, target):
    logits = _logits(LARGE, "flat", seed=4)
    _assert_matches(_draw(build_sampler(specs, seed=21), logits, draws=3_000), target(logits))


@pytest.mark.parametrize("shape", ["peaked", "flat"])
def test_mirostat_draws_from_its_truncated_distribution(shape):
    """With a negligible learning rate mu stays put, so every draw comes from the same truncation."""
    logits = _logits(200, shape, seed=5)
    stage = MirostatV2(tau=3.0, eta=1e-12, seed=2)
    sampler = build_sampler([{"type": "temperature", "temperature": 0.9}, {"type": "mirostat_v2", "tau": 3.0, "eta": 1e-12}], seed=2)
    sampler.reset()
    x = logits.astype(np.float64) / 0.9
    probs = np.exp(x - x.max())
    probs /= probs.sum()
    kept = np.flatnonzero(-np.log2(probs) <= stage.mu)
    if kept.size == 0:
        kept = np.array([int(np.argmax(logits))])
    _assert_matches(_draw(sampler, logits), _softmax_over(logits, kept, 0.9))


@pytest.mark.parametrize("shape,tau", [("flat", 7.8), ("peaked", 10.0)])
def test_mirostat_draws_through_the_mask_of_a_large_cut(shape, tau):
    """A large vocabulary whose Mirostat cut keeps 14,000-37,000 of 65,536 tokens: the set stays
    dense and the draw goes through the mask's block sums."""
    from gemma_lsp.sampling import Candidates, TemperatureScaling
    from gemma_lsp.sampling.selection import SPARSE_DRAW_LIMIT

    logits = _logits(LARGE, shape, seed=4)
    stage = MirostatV2(tau=tau, eta=1e-12)
    c = Candidates(logits)
    TemperatureScaling(0.9).apply(c)
    stage.truncate(c)
    assert c.is_dense and SPARSE_DRAW_LIMIT < c.size < LARGE
    x = logits.astype(np.float64) / 0.9
    probs = np.exp(x - x.max())
    probs /= probs.sum()
    kept = np.flatnonzero(-np.log2(probs) <= stage.mu)
    assert abs(kept.size - c.size) <= 2  # float32 against float64 at the edge
    specs = [{"type": "temperature", "temperature": 0.9}, {"type": "mirostat_v2", "tau": tau, "eta": 1e-12}]
    sampler = build_sampler(specs, seed=3)
    sampler.reset()
    counts = _draw(sampler, logits, draws=3_000)
    drawn = np.flatnonzero(counts)
    assert np.all(-np.log2(probs[drawn]) <= stage.mu + 1e-6), "drew a token outside the cut"
    _assert_matches(counts, _softmax_over(logits, np.union1d(kept, drawn), 0.9))


def test_the_chi_square_check_would_catch_a_wrong_distribution():
    """Power check: draws at temperature 0.7 do not pass for the distribution at 0.85."""
    logits = _logits(60, "peaked", seed=3)
    counts = _draw(build_sampler([{"type": "temperature", "temperature": 0.7}], seed=12), logits)
    with pytest.raises(AssertionError, match="chi-square"):
        _assert_matches(counts, _softmax_over(logits, np.arange(logits.size), 0.85))
