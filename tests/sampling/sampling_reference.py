"""Slow, obviously-correct references for the sampling tests.

* ``exact_*``: the samplers' definitions in float64 with a full stable sort (ties by token id).
* ``llama_f32_*``: llama.cpp's top-p and typical-p arithmetic re-done in numpy float32 (sums in
  the order llama.cpp adds), used to show that where llama.cpp and we disagree, it is llama.cpp's
  float32 rounding: its running sums lose the many tiny probabilities of a 262,144-token vocabulary.
* helpers to run our stages or llama.cpp's on one logit vector and read the kept token set.
"""

from __future__ import annotations

import math

import numpy as np

from gemma_lsp.bench.sampling import NativeChain
from gemma_lsp.sampling import Candidates, build_sampler


# ------------------------------------------------------------------------------ running samplers


def our_kept(specs: list, logits: np.ndarray) -> np.ndarray:
    """Sorted token ids our stages keep (the chain without its selector)."""
    chain = build_sampler(list(specs) + [{"type": "greedy"}])
    c = Candidates(logits)
    c.max_logit()
    for stage in chain._plan[:-1]:
        stage.apply(c)
    ids = c.token_ids()
    values = c.logits
    return np.sort(ids[values > -np.inf])


def native_kept(specs: list, logits: np.ndarray) -> np.ndarray:
    """Sorted token ids llama.cpp keeps (size of the array after apply, -inf entries dropped)."""
    native = NativeChain(specs, logits.shape[0], add_selector=False)
    try:
        data = native.apply(logits)
        return np.sort(data["id"][data["logit"] > -np.inf].astype(np.int64))
    finally:
        native.close()


# ------------------------------------------------------------------------------ exact references


def exact_probabilities(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    w = np.exp(x - x.max())
    return w / w.sum()


def by_logit(logits: np.ndarray) -> np.ndarray:
    """Token ids by descending logit, ties by ascending id."""
    return np.lexsort((np.arange(logits.shape[0]), -logits.astype(np.float64)))


def exact_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    return np.sort(by_logit(logits)[:k])


def exact_min_p(logits: np.ndarray, p: float, min_keep: int = 1) -> np.ndarray:
    # llama.cpp's threshold, in float32: max + logf(p)
    threshold = np.float32(logits.max()) + np.float32(math.log(np.float32(p)))
    kept = np.flatnonzero(logits >= threshold)
    if kept.size < min_keep:
        kept = by_logit(logits)[:min_keep]
    return np.sort(kept)


def exact_top_p_order(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = by_logit(logits)
    return order, np.cumsum(exact_probabilities(logits)[order])


def exact_top_p(logits: np.ndarray, p: float, min_keep: int = 1) -> np.ndarray:
    order, cum = exact_top_p_order(logits)
    count = min(max(int(np.searchsorted(cum, p, side="left")) + 1, min_keep), logits.shape[0])
    return np.sort(order[:count])


def exact_typical_order(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = exact_probabilities(logits)
    live = probs > 0
    entropy = -np.sum(probs[live] * np.log(probs[live]))
    with np.errstate(divide="ignore"):
        shifted = np.abs(-np.log(probs) - entropy)
    order = np.lexsort((np.arange(logits.shape[0]), shifted))
    return order, np.cumsum(probs[order])


def exact_typical(logits: np.ndarray, p: float, min_keep: int = 1) -> np.ndarray:
    order, cum = exact_typical_order(logits)
    count = min(max(int(np.searchsorted(cum, p, side="right")) + 1, min_keep), logits.shape[0])
    return np.sort(order[:count])


# ------------------------------------------------------------------------------ llama.cpp in float32


def llama_f32_top_p(logits: np.ndarray, p: float, min_keep: int = 1) -> np.ndarray:
    """llama.cpp's top-p in float32: softmax summed in token-id order, then accumulated in
    descending-logit order until the running sum reaches p."""
    x = logits.astype(np.float32)
    e = np.exp(x - x.max()).astype(np.float32)
    z = np.cumsum(e, dtype=np.float32)[-1]
    order = by_logit(logits)
    cum = np.cumsum((e / z).astype(np.float32)[order], dtype=np.float32)
    reached = np.flatnonzero(cum >= np.float32(p))
    count = int(reached[0]) + 1 if reached.size else logits.shape[0]
    return np.sort(order[: min(max(count, min_keep), logits.shape[0])])


def llama_f32_typical(logits: np.ndarray, p: float, min_keep: int = 1) -> np.ndarray:
    """llama.cpp's typical-p in float32: softmax and entropy summed in descending-logit order,
    then tokens by |-ln p - H| until the running probability exceeds p."""
    order = by_logit(logits)
    x = logits.astype(np.float32)[order]
    e = np.exp(x - x[0]).astype(np.float32)
    probs = (e / np.cumsum(e, dtype=np.float32)[-1]).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.cumsum((-probs * np.log(probs)).astype(np.float32), dtype=np.float32)[-1]
        shifted = np.abs(-np.log(probs) - entropy).astype(np.float32)
    by_shift = np.argsort(shifted, kind="stable")
    cum = np.cumsum(probs[by_shift], dtype=np.float32)
    past = np.flatnonzero((cum > np.float32(p)) & (np.arange(cum.shape[0]) >= min_keep - 1))
    count = int(past[0]) + 1 if past.size else logits.shape[0]
    return np.sort(order[by_shift[:count]])


def assert_llama_cpp_differs_only_by_float32(
    ours: np.ndarray, native: np.ndarray, exact: np.ndarray, llama_f32: np.ndarray
) -> None:
    """Where our kept set (the exact one) and llama.cpp's differ, llama.cpp's arithmetic redone
    in float32 differs from the exact result too and reproduces llama.cpp's set (up to a token or
    two: libm's float32 exp and log are not numpy's)."""
    if np.array_equal(ours, native):
        return
    assert np.array_equal(ours, exact), "we differ from llama.cpp and from the exact result"
    assert not np.array_equal(llama_f32, exact), "float32 arithmetic does not explain the difference"
    off = np.setxor1d(llama_f32, native).size
    assert off <= max(2, native.size // 10_000), f"llama.cpp's float32 arithmetic misses its result by {off} tokens"
    assert off < np.setxor1d(exact, native).size, "the float32 rerun is no closer to llama.cpp than the exact result"


# ------------------------------------------------------------------------------ statistics


def chi_square(observed: np.ndarray, expected_probs: np.ndarray, min_expected: float = 5.0) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom, pooling categories with few expected counts."""
    n = observed.sum()
    expected = expected_probs * n
    order = np.argsort(expected)
    obs, exp = observed[order].astype(np.float64), expected[order]
    pooled_obs, pooled_exp = [], []
    acc_o = acc_e = 0.0
    for o, e in zip(obs, exp):
        acc_o += o
        acc_e += e
        if acc_e >= min_expected:
            pooled_obs.append(acc_o)
            pooled_exp.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0 and pooled_exp:
        pooled_obs[-1] += acc_o
        pooled_exp[-1] += acc_e
    po, pe = np.array(pooled_obs), np.array(pooled_exp)
    return float(np.sum((po - pe) ** 2 / pe)), len(pe) - 1


def chi_square_critical(df: int, z: float = 3.719) -> float:
    """Upper quantile of chi-square(df) (Wilson-Hilferty); z = 3.719 is p = 1e-4."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def exact_dynamic_temperature(logits: np.ndarray, temperature: float, delta: float, exponent: float) -> float:
    probs = exact_probabilities(logits)
    live = probs > 0
    entropy = -np.sum(probs[live] * np.log(probs[live]))
    low, high = max(0.0, temperature - delta), temperature + delta
    return low + (high - low) * (entropy / math.log(logits.shape[0])) ** exponent


def llama_f32_dynamic_temperature(logits: np.ndarray, temperature: float, delta: float, exponent: float) -> float:
    """llama.cpp's temp_ext in float32: entropy summed in descending-logit order."""
    x = logits.astype(np.float32)[by_logit(logits)]
    e = np.exp(x - x[0]).astype(np.float32)
    probs = (e / np.cumsum(e, dtype=np.float32)[-1]).astype(np.float32)
    probs = probs[probs > 0]
    entropy = np.cumsum((-probs * np.log(probs)).astype(np.float32), dtype=np.float32)[-1]
    normalized = np.float32(entropy) / np.float32(-math.log(np.float32(1.0 / logits.shape[0])))
    low, high = np.float32(max(0.0, temperature - delta)), np.float32(temperature + delta)
    return float(low + (high - low) * np.float32(normalized**np.float32(exponent)))
