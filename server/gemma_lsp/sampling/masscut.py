"""The smallest key-ordered prefix of tokens whose weight reaches a target, found without sorting.

Top-p keeps the most likely tokens until their probability reaches ``p``; typical-p keeps the
tokens whose surprise is closest to the entropy until theirs exceeds ``p``. Both order tokens by
a key (the logit, or the distance from a centre logit) and cut where the running sum of weights
crosses a target. Sorting 262,144 keys takes ~8 ms in numpy; this module instead

1. estimates the crossing key from the heavy tokens (taken exactly) plus a strided sample of the
   light ones,
2. brackets it with two exact masked sums over the whole array (``keys <= k``, then the masked
   weights summed in blocks of 256, the blocks in float64: relative error ~1e-9), narrowing the
   bracket with more of them while it holds more than ``SHELL_LIMIT`` tokens,
3. sorts only the tokens inside the bracket (a few to a few thousand).

The result is exact: the same tokens a full stable sort by (key, token id) would keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .candidates import block_cumsum
from .vector import dot

SMALL = 4096  # arrays up to this size are simply sorted
SHELL_LIMIT = 4096  # largest bracket we sort rather than narrow with another exact sum
SAMPLE = 4096  # about this many light tokens are sampled to estimate where the cut falls
HEAVY_SHARE = 1.0 / 4096  # tokens with at least this share of the weight are counted exactly


@dataclass(frozen=True)
class PrefixCut:
    """Members are the tokens whose key is better than ``bound``, plus those equal to it except
    ``excluded`` (positions; ties are cut in ascending token id). ``count`` members in all."""

    bound: float
    excluded: np.ndarray
    count: int


def canonical_order(keys: np.ndarray, ids: np.ndarray, descending: bool = False) -> np.ndarray:
    """Permutation sorting by key (ascending, or descending), ties by ascending id."""
    return np.lexsort((ids, -keys if descending else keys))


def prefix_reaching(
    keys: np.ndarray,
    weights: np.ndarray,
    target: float,
    *,
    ids: np.ndarray | None = None,
    descending: bool = False,
    strict: bool = False,
    min_keep: int = 1,
    total: float | None = None,
    scratch: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> PrefixCut:
    """Cut where the running weight, in (key, id) order, first reaches ``target``.

    ``strict`` asks for a running weight greater than ``target`` (typical-p) instead of at least
    ``target`` (top-p). At least ``min_keep`` tokens are kept (all of them if there are fewer).
    ``ids`` default to positions. ``scratch`` is a (bool, bool, float32) triple of arrays at least
    as long as ``keys``, reused to avoid allocating vocabulary-sized masks.
    """
    n = keys.shape[0]
    if n <= SMALL:
        return _solve_sorted(keys, weights, ids, target, descending, strict, min_keep, 0.0, 0, np.arange(n))
    if scratch is None:
        scratch = (np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.float32))
    if total is None:
        total = float(np.sum(weights, dtype=np.float64))
    return _Bracketing(keys, weights, ids, descending, scratch, total).solve(target, strict, min_keep)


def _solve_sorted(
    keys: np.ndarray,
    weights: np.ndarray,
    ids: np.ndarray | None,
    target: float,
    descending: bool,
    strict: bool,
    min_keep: int,
    mass_before: float,
    count_before: int,
    positions: np.ndarray,
) -> PrefixCut:
    """Exact cut among ``positions`` (all of which come after ``count_before`` tokens of weight
    ``mass_before`` in key order)."""
    sub_keys = keys[positions]
    order = canonical_order(sub_keys, positions if ids is None else ids[positions], descending)
    cum = np.cumsum(weights[positions][order], dtype=np.float64)
    cum += mass_before
    j = int(np.searchsorted(cum, target, side="right" if strict else "left"))
    count = min(max(count_before + j + 1, min_keep), count_before + positions.shape[0])
    last = count - count_before - 1
    bound = float(sub_keys[order[last]])
    after = order[last + 1 :]
    excluded = positions[after[sub_keys[after] == bound]]
    return PrefixCut(bound=bound, excluded=excluded, count=count)


class _Bracketing:
    """Exact prefix cut on a large array via an estimate, two exact masked sums and a small sort."""

    def __init__(
        self,
        keys: np.ndarray,
        weights: np.ndarray,
        ids: np.ndarray | None,
        descending: bool,
        scratch: tuple[np.ndarray, np.ndarray, np.ndarray],
        total: float,
    ) -> None:
        n = keys.shape[0]
        self.keys, self.weights, self.ids, self.descending = keys, weights, ids, descending
        self.mask, self.mask2, self.mask_f32 = scratch[0][:n], scratch[1][:n], scratch[2][:n]
        self.total = total

    def _within(self, bound: float, out: np.ndarray) -> np.ndarray:
        """Tokens whose key is at or before ``bound`` in key order."""
        if self.descending:
            return np.greater_equal(self.keys, bound, out=out)
        return np.less_equal(self.keys, bound, out=out)

    def _mass_count(self, bound: float) -> tuple[float, int]:
        """Exact weight and number of tokens with key at or before ``bound``."""
        if bound == (math.inf if not self.descending else -math.inf):
            return self.total, self.keys.shape[0]
        if bound == (-math.inf if not self.descending else math.inf):
            return 0.0, 0
        mask = self._within(bound, self.mask)
        np.multiply(self.weights, mask, out=self.mask_f32)
        return float(block_cumsum(self.mask_f32)[-1]), int(np.count_nonzero(mask))

    def _estimate(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Sorted candidate keys with estimated running weights, and the estimate's std. dev."""
        n = self.keys.shape[0]
        heavy_floor = np.float32(self.total * HEAVY_SHARE)
        heavy = np.flatnonzero(np.greater_equal(self.weights, heavy_floor, out=self.mask))
        stride = max(1, n // SAMPLE)
        sample_w = self.weights[::stride].astype(np.float64)
        sample_w[sample_w >= heavy_floor] = 0.0  # heavy tokens are counted exactly above
        sigma = stride * math.sqrt(dot(sample_w, sample_w))
        keys = np.concatenate([self.keys[heavy], self.keys[::stride]])
        w = np.concatenate([self.weights[heavy].astype(np.float64), sample_w * stride])
        order = np.argsort(-keys if self.descending else keys)
        return keys[order], np.cumsum(w[order]), sigma

    def _key_at(self, est_keys: np.ndarray, est_cum: np.ndarray, mass: float, below: bool) -> float:
        """A key where the estimated running weight is about ``mass`` (``below``: just under it)."""
        if mass <= 0:
            return -math.inf if not self.descending else math.inf
        if mass >= self.total:
            return math.inf if not self.descending else -math.inf
        i = int(np.searchsorted(est_cum, mass, side="left"))
        if below:
            i -= 1
            if i < 0:
                return -math.inf if not self.descending else math.inf
        if i >= est_keys.shape[0]:
            return math.inf if not self.descending else -math.inf
        return float(est_keys[i])

    def _reached(self, mass: float, target: float, strict: bool) -> bool:
        return mass > target if strict else mass >= target

    def solve(self, target: float, strict: bool, min_keep: int) -> PrefixCut:
        est_keys, est_cum, sigma = self._estimate()
        margin = 3.0 * sigma + 1e-9 * self.total
        lo = self._key_at(est_keys, est_cum, target - margin, below=True)
        hi = self._key_at(est_keys, est_cum, target + margin, below=False)
        lo_mass, lo_count = self._mass_count(lo)
        hi_mass, hi_count = self._mass_count(hi)
        for _ in range(12):  # widen until the crossing is bracketed (almost always at once)
            if self._reached(lo_mass, target, strict):
                margin *= 4
                lo = self._key_at(est_keys, est_cum, target - margin, below=True)
                lo_mass, lo_count = self._mass_count(lo)
            elif not self._reached(hi_mass, target, strict):
                margin *= 4
                hi = self._key_at(est_keys, est_cum, target + margin, below=False)
                hi_mass, hi_count = self._mass_count(hi)
            else:
                break
        else:  # pragma: no cover - the estimate was useless; sort everything
            return _solve_sorted(
                self.keys, self.weights, self.ids, target, self.descending, strict, min_keep,
                0.0, 0, np.arange(self.keys.shape[0]),
            )
        # Narrow a wide bracket with exact sums at keys where the estimate, rescaled to the exact
        # weights at both ends of the bracket, reaches the target.
        for _ in range(10):
            if hi_count - lo_count <= SHELL_LIMIT:
                break
            between = (est_keys > lo) & (est_keys < hi) if not self.descending else (est_keys < lo) & (est_keys > hi)
            inside = np.flatnonzero(between)
            if inside.size == 0:
                break
            base = est_cum[inside[0] - 1] if inside[0] > 0 else 0.0
            span = est_cum[inside[-1]] - base
            if span <= 0:
                mid = float(est_keys[inside[inside.size // 2]])
            else:
                wanted = (target - lo_mass) / max(hi_mass - lo_mass, 1e-300) * span + base
                j = min(int(np.searchsorted(est_cum[inside], wanted, side="left")), inside.size - 1)
                mid = float(est_keys[inside[j]])
            mid_mass, mid_count = self._mass_count(mid)
            if self._reached(mid_mass, target, strict):
                hi, hi_mass, hi_count = mid, mid_mass, mid_count
            else:
                lo, lo_mass, lo_count = mid, mid_mass, mid_count
        # The crossing lies among tokens after ``lo`` and up to ``hi``: sort just those.
        shell = self._within(hi, self.mask)
        if lo_count:
            shell &= np.logical_not(self._within(lo, self.mask2), out=self.mask2)
        positions = np.flatnonzero(shell)
        if min_keep > lo_count + positions.shape[0]:  # pragma: no cover - min_keep reaches past hi
            positions = np.flatnonzero(~self._within(lo, self.mask2)) if lo_count else np.arange(self.keys.shape[0])
        return _solve_sorted(
            self.keys, self.weights, self.ids, target, self.descending, strict, min_keep, lo_mass, lo_count, positions
        )
