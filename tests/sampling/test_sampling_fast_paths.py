"""The vectorised helpers behind the large-vocabulary fast paths, against plain numpy.

* ``nonzero_positions`` must equal ``np.flatnonzero`` for any bool mask;
* ``canonical_order``'s one-sort path must equal ``lexsort`` (key, then id);
* ``prefix_reaching`` (estimate, one exact sum, a band, buckets, a small sort) must keep exactly
  the tokens a full stable sort keeps, on large arrays of many shapes;
* ``block_cumsum`` and ``draw_index_blocked`` with a mask must equal their unmasked forms on the
  masked weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from gemma_lsp.sampling.candidates import BLOCK, Candidates, Cut, Workspace, block_cumsum
from gemma_lsp.sampling.draw import draw_index_blocked
from gemma_lsp.sampling.masscut import PrefixCut, canonical_order, prefix_reaching
from gemma_lsp.sampling.vector import nonzero_positions

# ------------------------------------------------------------------------------ nonzero_positions

LENGTHS = [1, 7, 8, 9, 4095, 4096, 4097, 4103, 65_539, 262_144]
DENSITIES = [0.0, 1e-4, 1e-3, 0.004, 0.02, 0.07, 0.099, 0.1, 0.11, 0.5, 0.97, 1.0]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("density", DENSITIES)
def test_nonzero_positions_equals_flatnonzero(n, density):
    rng = np.random.default_rng(int(n * 1000 + density * 1e4))
    mask = rng.random(n) < density
    expected = np.flatnonzero(mask)
    for count in (None, int(np.count_nonzero(mask))):
        got = nonzero_positions(mask, count)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected)
    assert np.array_equal(nonzero_positions(mask, likely_sparse=True), expected)  # right if not sparse


@pytest.mark.parametrize("n", LENGTHS)
def test_nonzero_positions_all_false_all_true_and_edges(n):
    for mask in (np.zeros(n, bool), np.ones(n, bool)):
        assert np.array_equal(nonzero_positions(mask), np.flatnonzero(mask))
    edges = np.zeros(n, bool)
    edges[[0, n - 1]] = True  # the first and last byte (the tail past the last 8-byte word)
    assert np.array_equal(nonzero_positions(edges), np.flatnonzero(edges))


def test_nonzero_positions_on_runs_views_and_other_dtypes():
    rng = np.random.default_rng(3)
    n = 100_003
    runs = np.repeat(rng.random(n // 50 + 1) < 0.05, 50)[:n]  # clustered Trues: dense words
    assert np.array_equal(nonzero_positions(runs), np.flatnonzero(runs))
    base = rng.random(2 * n) < 0.03
    for view in (base[1 : n + 1], base[::2], base[5:]):  # unaligned start, strided, odd length
        assert np.array_equal(nonzero_positions(view), np.flatnonzero(view))
    counts = rng.integers(0, 3, n).astype(np.uint8)  # not bool: plain flatnonzero semantics
    assert np.array_equal(nonzero_positions(counts), np.flatnonzero(counts))
    assert nonzero_positions(np.zeros(0, bool)).shape == (0,)


# ------------------------------------------------------------------------------ canonical_order


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("n", [17, 100, 4096, 30_000])
def test_canonical_order_sorts_by_key_then_id(n, descending):
    rng = np.random.default_rng(n)
    keys = np.round(rng.normal(0, 2, n), 1).astype(np.float32)  # many ties
    keys[rng.choice(n, 6, replace=False)] = [0.0, -0.0, np.inf, -np.inf, 0.0, -0.0]  # -0.0 ties 0.0
    positions = np.arange(n)
    ids = np.sort(rng.choice(10 * n, n, replace=False))  # ascending ids (a set in id order)
    for tiebreak in (positions, ids):
        expected = np.lexsort((tiebreak, -keys.astype(np.float64) if descending else keys.astype(np.float64)))
        assert np.array_equal(canonical_order(keys, tiebreak, descending), expected)
    shuffled = rng.permutation(n)  # ids out of order: the lexsort fallback
    expected = np.lexsort((shuffled, -keys if descending else keys))
    assert np.array_equal(canonical_order(keys, shuffled, descending), expected)


# ------------------------------------------------------------------------------ prefix_reaching


def assert_same_cut(cut: PrefixCut, keys, weights, target, ids, descending, strict, min_keep) -> None:
    """``cut`` keeps a prefix of the full stable sort by (key, id), and the one where the running
    weight (float64) crosses ``target``, up to the rounding of float32 block sums: where the
    running weight passes within 1e-6 of ``target`` over several tokens (a peaked distribution's
    tail, 3e-8 of the weight per token) the cut may fall on any of them."""
    n = keys.shape[0]
    ids = np.arange(n) if ids is None else ids
    order = np.lexsort((ids, -keys.astype(np.float64) if descending else keys.astype(np.float64)))
    cum = np.cumsum(weights.astype(np.float64)[order])
    count = cut.count
    assert members_of(cut, keys, descending) == set(order[:count].tolist())
    if cut.members is not None:
        assert cut.members.tolist() == sorted(order[:count].tolist())
    exact = min(max(int(np.searchsorted(cum, target, side="right" if strict else "left")) + 1, min_keep), n)
    if count != exact:  # the running weights in between must be within rounding of the target
        between = cum[min(count, exact) - 1 : max(count, exact) - 1]
        assert np.all(np.abs(between - target) <= 1e-6 * cum[-1]), (count, exact)


def members_of(cut: PrefixCut, keys: np.ndarray, descending: bool) -> set[int]:
    better = keys > cut.bound if descending else keys < cut.bound
    inside = better | (keys == cut.bound)
    inside[cut.excluded] = False
    return set(np.flatnonzero(inside).tolist())


def _shape(name: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(logits, weights) of a test distribution."""
    if name == "flat":
        x = rng.normal(0, 1, n)
    elif name == "peaked":
        x = rng.normal(0, 2.5, n)
        x[rng.choice(n, 20, replace=False)] = np.linspace(18, 10, 20)
    elif name == "ties":
        x = np.round(rng.normal(0, 1, n), 1)  # ~60 distinct values: huge ties at the cut
    elif name == "two_levels":
        x = np.where(rng.random(n) < 0.5, 0.0, 1.0)  # two keys only
    elif name == "banned":
        x = rng.normal(0, 1, n)
        x[rng.random(n) < 0.3] = -np.inf
    else:  # "uniform": every key equal
        x = np.zeros(n)
    x = x.astype(np.float32)
    with np.errstate(over="ignore"):
        w = np.exp(x - np.float32(x[np.isfinite(x)].max()))
    return x, w.astype(np.float32)


CASES = [
    (shape, n, p)
    for shape in ("flat", "peaked", "ties", "two_levels", "banned", "uniform")
    for n in (5_000, 70_001, 262_144)
    for p in (0.05, 0.12, 0.3, 0.95, 0.999)
]


@pytest.mark.parametrize("shape,n,p", CASES)
def test_prefix_reaching_typical_keys_match_a_full_sort(shape, n, p):
    """Typical-p's keys: distance from the weighted mean logit, ascending, strict."""
    rng = np.random.default_rng(n + int(p * 100))
    x, w = _shape(shape, n, rng)
    total = float(np.sum(w, dtype=np.float64))
    live = w > 0
    centre = float(np.sum(w[live].astype(np.float64) * x[live]) / total)
    with np.errstate(invalid="ignore"):
        keys = np.abs(x - np.float32(centre)).astype(np.float32)
    for min_keep in (1, 50):
        cut = prefix_reaching(keys, w, p * total, strict=True, min_keep=min_keep, total=total)
        assert_same_cut(cut, keys, w, p * total, None, False, True, min_keep)


@pytest.mark.parametrize("shape,n,p", CASES)
def test_prefix_reaching_top_p_keys_match_a_full_sort(shape, n, p):
    """Top-p's keys: the logits, descending, not strict; with ids of a set in id order."""
    rng = np.random.default_rng(7 * n + int(p * 100))
    x, w = _shape(shape, n, rng)
    total = float(np.sum(w, dtype=np.float64))
    ids = np.sort(rng.choice(2 * n, n, replace=False))
    cut = prefix_reaching(x, w, p * total, ids=ids, descending=True, total=total)
    assert_same_cut(cut, x, w, p * total, ids, True, False, 1)


@pytest.mark.parametrize("seed", range(12))
def test_prefix_reaching_at_random_targets(seed):
    """Many targets on one array: the band lands on both sides of the first exact sum."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4_100, 120_000))
    x, w = _shape(["flat", "peaked", "ties"][seed % 3], n, rng)
    keys = np.abs(x - np.float32(rng.normal(0, 1))).astype(np.float32)
    total = float(np.sum(w, dtype=np.float64))
    for fraction in rng.random(4):
        strict = bool(rng.integers(0, 2))
        cut = prefix_reaching(keys, w, fraction * total, strict=strict, total=total)
        assert_same_cut(cut, keys, w, fraction * total, None, False, strict, 1)


@pytest.mark.parametrize("seed", range(6))
def test_prefix_reaching_when_the_estimate_is_poor(seed, monkeypatch):
    """No safety margin and a tiny sample: bands too narrow at first, widened until they hold
    the crossing; float64 keys (the sparse typical path) take the argsort/lexsort fallbacks."""
    import gemma_lsp.sampling.masscut as masscut

    monkeypatch.setattr(masscut, "MARGIN_SIGMAS", 0.0)
    monkeypatch.setattr(masscut, "SAMPLE", 64)
    rng = np.random.default_rng(100 + seed)
    n = 50_000
    x, w = _shape(["flat", "ties", "peaked"][seed % 3], n, rng)
    keys = np.abs(x - np.float32(0.7)).astype(np.float32 if seed < 3 else np.float64)
    total = float(np.sum(w, dtype=np.float64))
    ids = np.arange(n) if seed % 2 else None
    for fraction in (0.02, 0.1, 0.5, 0.9, 0.99):
        cut = prefix_reaching(keys, w, fraction * total, ids=ids, strict=True, total=total)
        assert_same_cut(cut, keys, w, fraction * total, None, False, True, 1)


@pytest.mark.parametrize("shape", ["flat", "ties", "banned", "two_levels"])
@pytest.mark.parametrize("descending", [False, True])
def test_prefix_reaching_splits_wide_bands_into_buckets(shape, descending, monkeypatch):
    """Bands wider than a (here lowered) sort limit are cut in buckets of equal key width."""
    import gemma_lsp.sampling.masscut as masscut

    monkeypatch.setattr(masscut, "SHELL_LIMIT", 600)
    monkeypatch.setattr(masscut, "SPARSE_SUM_SHARE", 0.3)  # more probes extract their members
    rng = np.random.default_rng(5)
    n = 60_000
    x, w = _shape(shape, n, rng)
    keys = x if descending else np.abs(x - np.float32(0.3)).astype(np.float32)
    total = float(np.sum(w, dtype=np.float64))
    for fraction in (0.003, 0.01, 0.03, 0.05, 0.2, 0.6, 0.97):
        for strict in (False, True):
            cut = prefix_reaching(
                keys, w, fraction * total, descending=descending, strict=strict, min_keep=3, total=total
            )
            assert_same_cut(cut, keys, w, fraction * total, None, descending, strict, 3)


# ------------------------------------------------------------------------------ masked block sums


@pytest.mark.parametrize("n", [BLOCK, 3 * BLOCK + 17, 262_144])
def test_masked_block_cumsum_and_draw(n):
    rng = np.random.default_rng(n)
    values = rng.random(n).astype(np.float32)
    mask = rng.random(n) < 0.3
    masked = values * mask
    cum = block_cumsum(values, mask)
    # float32 block sums either way (summed in another order): equal to float32 rounding
    assert np.allclose(cum, block_cumsum(masked), rtol=1e-6, atol=0)
    for u in rng.random(50):
        i = draw_index_blocked(values, cum, u, mask)
        assert mask[i]
        assert i == draw_index_blocked(masked, cum, u)


# ------------------------------------------------------------------------------ a cut's known mask


def test_a_cut_reuses_its_mask_only_while_nobody_can_have_written_it():
    rng = np.random.default_rng(8)
    logits = rng.normal(0, 1, 50_000).astype(np.float32)
    workspace = Workspace(logits.shape[0])
    bound = np.float32(1.5)
    mask = np.greater_equal(logits, bound, out=workspace.array("mask", np.bool_))
    cut = Cut(logits, float(bound), True, np.empty(0, np.int64), int(np.count_nonzero(mask)))
    assert cut.known_mask() is None  # not remembered
    assert cut.remember_mask(workspace, "mask").known_mask() is mask
    workspace.array("mask", np.bool_)[:] = True  # handed out again (and overwritten)
    assert cut.known_mask() is None
    c = Candidates(logits, workspace)
    c.set_cut(cut)
    assert np.array_equal(c.token_ids(), np.flatnonzero(logits >= bound))  # recomputed, right

    mask = np.greater_equal(logits, bound, out=workspace.array("mask", np.bool_))
    c = Candidates(logits, workspace)
    c.set_cut(Cut(logits, float(bound), True, np.empty(0, np.int64), int(mask.sum())).remember_mask(workspace, "mask"))
    assert np.array_equal(c.token_ids(), np.flatnonzero(logits >= bound))  # reused
