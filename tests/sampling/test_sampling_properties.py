"""Properties of the truncation samplers (hypothesis): never empty, probabilities sum to one,
stricter parameters never keep more tokens, results independent of candidate order, and the fast
dense paths give the same tokens as the plain sparse ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gemma_lsp.sampling import (
    Candidates,
    DynamicTemperature,
    LogitBias,
    MinP,
    MirostatV2,
    Penalties,
    TemperatureScaling,
    TopK,
    TopP,
    Typical,
)
from gemma_lsp.sampling.chain import SamplerChain
from gemma_lsp.sampling.selection import RandomChoice

# Logits with ties (a coarse grid) and banned tokens, at least one token allowed.
finite = st.one_of(
    st.floats(-30, 30, allow_nan=False, width=32),
    st.sampled_from([0.0, 1.0, 2.5, -1.0]),  # repeated values make ties
)
logit_arrays = arrays(np.float32, st.integers(1, 200), elements=st.one_of(finite, st.just(-np.inf))).filter(
    lambda a: np.isfinite(a).any()
)
probability = st.floats(0.001, 1.0)
stages = st.one_of(
    st.builds(TopK, st.integers(1, 250)),
    st.builds(TopP, probability, st.integers(1, 5)),
    st.builds(MinP, st.floats(0.0, 1.0), st.integers(1, 5)),
    st.builds(Typical, probability, st.integers(1, 5)),
    st.builds(TemperatureScaling, st.floats(0.05, 3.0)),
    st.builds(DynamicTemperature, st.floats(0.1, 2.0), st.floats(0.0, 1.0), st.floats(0.25, 4.0)),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def kept(stage_list, logits: np.ndarray) -> np.ndarray:
    c = Candidates(logits)
    SamplerChain(stage_list).apply(c)
    return np.sort(c.token_ids())


def kept_sparse(stage_list, ids: np.ndarray, logits: np.ndarray, n_vocab: int) -> np.ndarray:
    c = Candidates.from_arrays(ids, logits, n_vocab=n_vocab)
    SamplerChain(stage_list).apply(c)
    return np.sort(c.token_ids())


@SETTINGS
@given(logit_arrays, st.lists(stages, min_size=1, max_size=4))
def test_the_kept_set_is_never_empty_and_its_probabilities_sum_to_one(logits, stage_list):
    c = Candidates(logits)
    SamplerChain(stage_list).apply(c)
    ids, probs = c.probabilities()
    assert ids.size >= 1
    assert np.all(probs >= 0)
    assert abs(probs.sum() - 1.0) < 1e-9
    assert np.isfinite(logits[ids]).any()  # banned tokens may stay, never alone
    assert np.all(probs[~np.isfinite(logits[ids])] == 0)
    assert np.unique(ids).size == ids.size


@SETTINGS
@given(logit_arrays, st.integers(1, 250), st.integers(1, 250))
def test_a_smaller_k_never_keeps_more(logits, k1, k2):
    small, large = kept([TopK(min(k1, k2))], logits), kept([TopK(max(k1, k2))], logits)
    assert set(small) <= set(large)


@SETTINGS
@given(logit_arrays, probability, probability)
def test_a_smaller_top_p_never_keeps_more(logits, p1, p2):
    small, large = kept([TopP(min(p1, p2))], logits), kept([TopP(max(p1, p2))], logits)
    assert set(small) <= set(large)


@SETTINGS
@given(logit_arrays, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_a_larger_min_p_never_keeps_more(logits, p1, p2):
    small, large = kept([MinP(max(p1, p2))], logits), kept([MinP(min(p1, p2))], logits)
    assert set(small) <= set(large)


@SETTINGS
@given(logit_arrays, probability, probability)
def test_a_smaller_typical_p_never_keeps_more(logits, p1, p2):
    small, large = kept([Typical(min(p1, p2))], logits), kept([Typical(max(p1, p2))], logits)
    assert set(small) <= set(large)


@SETTINGS
@given(logit_arrays, st.floats(0.5, 30.0), st.floats(0.5, 30.0), st.floats(0.2, 2.0))
def test_a_lower_mirostat_mu_never_keeps_more(logits, mu1, mu2, temperature):
    def truncated(mu):
        stage = MirostatV2(tau=5.0, eta=0.1)
        stage.mu = mu
        c = Candidates(logits)
        TemperatureScaling(temperature).apply(c)
        stage.truncate(c)
        return set(c.token_ids())

    assert truncated(min(mu1, mu2)) <= truncated(max(mu1, mu2))


@SETTINGS
@given(logit_arrays, st.lists(stages, min_size=1, max_size=4), st.randoms(use_true_random=False), st.integers(0, 2**32 - 1))
def test_results_do_not_depend_on_candidate_order(logits, stage_list, shuffler, seed):
    n = logits.shape[0]
    order = list(range(n))
    shuffler.shuffle(order)
    ids = np.array(order, dtype=np.int64)
    assert np.array_equal(kept(stage_list, logits), kept_sparse(stage_list, ids, logits[ids], n))
    # and the drawn token is the same for the same seed
    dense = Candidates(logits)
    sparse = Candidates.from_arrays(ids, logits[ids], n_vocab=n)
    chain_a = SamplerChain(list(stage_list) + [RandomChoice(seed)])
    chain_b = SamplerChain(list(stage_list) + [RandomChoice(seed)])
    chain_a.apply(dense)
    chain_b.apply(sparse)
    assert dense.selected == sparse.selected


# ---------------------------------------------------------------------- dense fast paths

shapes = st.sampled_from(["flat", "peaked", "ties", "banned"])


def big_logits(shape: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if shape == "flat":
        return rng.normal(0, 1, n).astype(np.float32)
    if shape == "peaked":
        logits = rng.normal(0, 2.5, n).astype(np.float32)
        logits[rng.choice(n, 20, replace=False)] = np.linspace(18, 10, 20, dtype=np.float32)
        return logits
    if shape == "ties":
        return rng.integers(-8, 8, n).astype(np.float32) / np.float32(2)
    logits = rng.normal(0, 1, n).astype(np.float32)
    logits[rng.random(n) < 0.3] = -np.inf
    return logits


big_stages = st.one_of(
    st.builds(TopK, st.integers(1, 3000)),
    st.builds(TopP, st.floats(0.05, 0.99), st.integers(1, 3)),
    st.builds(MinP, st.floats(0.0, 0.5), st.integers(1, 3)),
    st.builds(Typical, st.floats(0.05, 0.99), st.integers(1, 3)),
    st.builds(TemperatureScaling, st.floats(0.3, 2.0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes, st.integers(5_000, 40_000), st.integers(0, 10_000), st.lists(big_stages, min_size=1, max_size=3))
def test_dense_fast_paths_keep_the_same_tokens_as_the_sparse_path(shape, n, seed, stage_list):
    logits = big_logits(shape, n, seed)
    ids = np.random.default_rng(seed + 1).permutation(n)
    assert np.array_equal(kept(stage_list, logits), kept_sparse(stage_list, ids, logits[ids], n))


@pytest.mark.parametrize("shape", ["flat", "peaked", "ties", "banned"])
@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.99])
@pytest.mark.parametrize("min_p", [0.001, 0.05, 0.5])
def test_top_p_then_min_p_on_a_dense_set_keeps_the_tokens_of_the_sequential_definition(shape, top_p, min_p):
    """The fused evaluation proves top-p's cut from bounds when it can and computes it exactly
    when it cannot; either way the result is top-p's prefix, then min-p's cut of it."""
    logits = big_logits(shape, 60_000, seed=7)
    ids = np.random.default_rng(8).permutation(logits.shape[0])
    stage_list = [TopP(top_p), MinP(min_p)]
    assert np.array_equal(kept(stage_list, logits), kept_sparse(stage_list, ids, logits[ids], logits.shape[0]))


@pytest.mark.parametrize("n", [50, 30_000])
def test_penalties_and_logit_bias_do_not_depend_on_candidate_order(n):
    logits = big_logits("flat", n, seed=3)
    ids = np.random.default_rng(4).permutation(n)

    def stages():
        penalties = Penalties(last_n=16, repeat=1.3, frequency=0.2, presence=0.1)
        for token in (1, 5, 5, 9, n - 1):
            penalties.accept(token)
        return [penalties, LogitBias({2: -np.inf, 3: 4.0}), TopK(25)]

    dense = Candidates(logits)
    SamplerChain(stages()).apply(dense)
    sparse = Candidates.from_arrays(ids, logits[ids], n_vocab=n)
    SamplerChain(stages()).apply(sparse)
    a = dict(zip(dense.token_ids().tolist(), dense.logits.tolist()))
    b = dict(zip(sparse.token_ids().tolist(), sparse.logits.tolist()))
    assert a == b and 2 not in a and 3 in a
