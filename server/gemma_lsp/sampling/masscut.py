"""The smallest key-ordered prefix of tokens whose weight reaches a target, found without sorting.

Top-p keeps the most likely tokens until their probability reaches ``p``; typical-p keeps the
tokens whose surprise is closest to the entropy until theirs exceeds ``p``. Both order tokens by
a key (the logit, or the distance from a centre logit) and cut where the running sum of weights
crosses a target. Sorting 262,144 keys takes ~8 ms in numpy; this module instead

0. if the heavy tokens (each at least ``HEAVY_SHARE`` of the weight) alone reach the target (a
   peaked distribution), counts the tokens at or before the key where they do: no fewer can be
   needed, and usually only a few are there, so they are sorted at once. Otherwise it
1. estimates the running weight along the key order from the heavy tokens (taken exactly) plus
   a strided sample of the light ones, scaled to the light tokens' exact total,
2. takes one exact sum over the whole array at the key ``k0`` where the estimate crosses the
   target (a masked sum, or a sum over the extracted tokens when few are in, or out),
3. extracts the *band* of tokens between ``k0`` and a second key ``k1`` on the side where the
   exact sum puts the crossing, ``k1`` chosen so that the band's estimated weight exceeds the
   exact excess or shortfall at ``k0`` by two standard deviations of the band's own estimate
   (far smaller than the whole estimate's, so the band is narrow). The band's exact weight
   gives the exact weight at ``k1``; if the crossing is not inside after all (rare), the band
   is widened,
4. splits a band of more than ``SHELL_LIMIT`` tokens into buckets of equal key width, whose
   exact weights one ``bincount`` gives, keeps the bucket where the crossing is, and sorts it.

The result is exact: the same tokens a full stable sort by (key, token id) would keep, up to
the rounding of the weights' sums (float32 block sums added in float64).

The previous version bracketed the crossing with two exact sums at +-3 standard deviations of
the whole estimate and narrowed the bracket with more of them: 2 to 6 full passes (~0.13 ms
each at 262,144 tokens) and a sort of up to 4,096 tokens with ``lexsort``, where this needs
one exact sum and one band extraction (typical-p: ~1.6 -> ~0.95 ms peaked, ~2.1 -> ~1.6 ms
flat, same-run A/B on the shared 2-core machine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .candidates import block_cumsum
from .vector import nonzero_positions

SMALL = 4096  # arrays up to this size are simply sorted
SHELL_LIMIT = 4096  # largest band sorted directly; larger ones are split into buckets first
SAMPLE = 4096  # about this many light tokens are sampled to estimate where the cut falls ...
SAMPLE_SHARE = 1 / 16  # ... or this share of them in shorter arrays (fewer, cheaper passes)
HEAVY_SHARE = 1.0 / 4096  # tokens with at least this share of the weight are counted exactly
MARGIN_SIGMAS = 2.0  # the band's estimated weight exceeds what is needed by this many std. devs.
# An exact sum over tokens at or before a key is taken from their extracted positions (or from
# those of the others) when at most this share of the tokens is in (or out): a masked sum costs
# ~0.08 ms at 262,144 tokens, an extraction at 2 % ~0.07 ms (and the positions serve again).
SPARSE_SUM_SHARE = 0.02
COMPOSITE_SORT_MIN = 800  # shorter arrays are sorted with lexsort / argsort (fewer numpy calls)


@dataclass(frozen=True)
class PrefixCut:
    """Members are the tokens whose key is better than ``bound``, plus those equal to it except
    ``excluded`` (positions; ties are cut in ascending token id). ``count`` members in all.
    ``members``: their positions in ascending order, when they were at hand anyway (else None)."""

    bound: float
    excluded: np.ndarray
    count: int
    members: np.ndarray | None = None


def canonical_order(keys: np.ndarray, ids: np.ndarray, descending: bool = False) -> np.ndarray:
    """Permutation sorting by key (ascending, or descending), ties by ascending id.

    float32 keys with ids ascending along the array (positions, or a set in id order) are sorted
    as one uint64 per token, the key's bits made order-preserving above the position: a plain
    sort, 2.5x faster than ``lexsort`` for 4,096 tokens (0.1 against 0.26 ms; slower below
    ``COMPOSITE_SORT_MIN`` tokens, where its dozen numpy calls dominate).
    """
    n = keys.shape[0]
    if keys.dtype == np.float32 and COMPOSITE_SORT_MIN <= n < 2**32 and _is_ascending(ids):
        return _composite_order(keys, descending, np.arange(n, dtype=np.uint64))
    return np.lexsort((ids, -keys if descending else keys))


def _is_ascending(values: np.ndarray) -> bool:
    return values.shape[0] < 2 or bool(np.all(values[1:] > values[:-1]))


def _composite_order(keys: np.ndarray, descending: bool, tiebreak: np.ndarray) -> np.ndarray:
    """Positions of float32 ``keys`` sorted by key, ties by ``tiebreak`` (uint64 below 2**32,
    distinct), from one sort of ``orderable(key) << 32 | tiebreak``. (NaN keys, which no
    caller has, would sort to an end.)"""
    bits = (keys + np.float32(0.0)).view(np.uint32)  # + 0.0 turns -0.0 into +0.0 (they tie)
    # IEEE floats order like integers once negative ones have all bits flipped and positive
    # ones their sign bit: flip = 0xFFFFFFFF for negatives, 0x80000000 otherwise.
    flip = bits >> np.uint32(31)
    np.negative(flip, out=flip)
    flip |= np.uint32(0x80000000)
    bits = bits ^ flip
    if descending:
        np.invert(bits, out=bits)
    composite = bits.astype(np.uint64)
    composite <<= np.uint64(32)
    composite |= tiebreak
    composite.sort()
    composite &= np.uint64(0xFFFFFFFF)
    return composite.astype(np.intp)


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
    scratch: tuple[np.ndarray, np.ndarray] | None = None,
) -> PrefixCut:
    """Cut where the running weight, in (key, id) order, first reaches ``target``.

    ``strict`` asks for a running weight greater than ``target`` (typical-p) instead of at least
    ``target`` (top-p). At least ``min_keep`` tokens are kept (all of them if there are fewer).
    ``ids`` default to positions. ``scratch`` is a pair of bool arrays at least as long as ``keys``,
    reused to avoid allocating vocabulary-sized masks.
    """
    n = keys.shape[0]
    if n <= SMALL:
        return _solve_sorted(keys, weights, ids, target, descending, strict, min_keep, 0.0, 0, np.arange(n))
    if scratch is None:
        scratch = (np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_))
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
    before: np.ndarray | None = None,
) -> PrefixCut:
    """Exact cut among ``positions`` (ascending; all of them come after ``count_before`` tokens
    of weight ``mass_before`` in key order). ``before``: the positions of those earlier tokens,
    if known, to return the members."""
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
    members = None
    if before is not None:
        members = np.sort(np.concatenate([before, positions[order[: last + 1]]]))
    return PrefixCut(bound=bound, excluded=excluded, count=count, members=members)


@dataclass
class _Probe:
    """The exact weight and number of the tokens at or before ``key`` in key order, and their
    positions (ascending) if they were extracted."""

    key: float
    mass: float
    count: int
    positions: np.ndarray | None = None


@dataclass
class _Estimate:
    """Sample keys in key order with the estimated running weight up to each (inclusive) and
    the running variance of that estimate (heavy tokens are exact and add none)."""

    keys: np.ndarray
    cum: np.ndarray
    var: np.ndarray


class _Bracketing:
    """Exact prefix cut on a large array: an estimate, one exact sum, a band and a small sort."""

    def __init__(
        self,
        keys: np.ndarray,
        weights: np.ndarray,
        ids: np.ndarray | None,
        descending: bool,
        scratch: tuple[np.ndarray, np.ndarray],
        total: float,
    ) -> None:
        n = keys.shape[0]
        self.n = n
        self.keys, self.weights, self.ids, self.descending = keys, weights, ids, descending
        self.mask, self.mask2 = scratch[0][:n], scratch[1][:n]
        self.total = total
        self.sparse_limit = int(SPARSE_SUM_SHARE * n)
        # Keys before every token's (no token has it: keys are distances, or finite logits) and
        # at or after every token's.
        self.first = math.inf if descending else -math.inf
        self.last = -self.first
        self._mask_key: float | None = None  # the key whose membership ``self.mask`` holds

    # -------------------------------------------------------------------------- exact sums

    def _within(self, bound: float, out: np.ndarray) -> np.ndarray:
        """Tokens whose key is at or before ``bound`` in key order (into ``out``)."""
        if out is self.mask:
            self._mask_key = bound
        if self.descending:
            return np.greater_equal(self.keys, bound, out=out)
        return np.less_equal(self.keys, bound, out=out)

    def _after(self, keys: np.ndarray, bound: float) -> np.ndarray:
        """Which of ``keys`` come after ``bound`` in key order."""
        return keys < bound if self.descending else keys > bound

    def _probe(self, bound: float) -> _Probe:
        """Exact weight and number of the tokens with key at or before ``bound``; leaves their
        mask in ``self.mask``."""
        if bound == self.last:
            return _Probe(bound, self.total, self.n)
        mask = self._within(bound, self.mask)
        count = int(np.count_nonzero(mask))
        if count <= self.sparse_limit:
            positions = nonzero_positions(mask, count)
            return _Probe(bound, float(np.sum(self.weights[positions], dtype=np.float64)), count, positions)
        if self.n - count <= self.sparse_limit:
            outside = nonzero_positions(np.logical_not(mask, out=self.mask2), self.n - count)
            return _Probe(bound, self.total - float(np.sum(self.weights[outside], dtype=np.float64)), count)
        return _Probe(bound, float(block_cumsum(self.weights, mask)[-1]), count)

    def _between(self, low_key: float, high: _Probe | float) -> np.ndarray:
        """Ascending positions of the tokens after ``low_key`` and at or before ``high`` (a key,
        or a probe whose positions, if extracted, are filtered instead of the whole array)."""
        if isinstance(high, _Probe):
            if high.positions is not None:
                return high.positions[self._after(self.keys[high.positions], low_key)]
            high = high.key
        if low_key == self.first:
            if high == self.last:
                return np.arange(self.n)
            return nonzero_positions(self.mask if self._mask_key == high else self._within(high, self.mask))
        if high == self.last:
            below = self.mask if self._mask_key == low_key else self._within(low_key, self.mask)
            return nonzero_positions(np.logical_not(below, out=self.mask2))
        # at or before high and not at or before low (True > False), reusing a mask at hand
        if self._mask_key == low_key:
            inside = np.greater(self._within(high, self.mask2), self.mask, out=self.mask2)
        elif self._mask_key == high:
            inside = np.greater(self.mask, self._within(low_key, self.mask2), out=self.mask2)
        else:
            inside = np.greater(self._within(high, self.mask), self._within(low_key, self.mask2), out=self.mask2)
        return nonzero_positions(inside, likely_sparse=True)  # a band: a few percent of the tokens

    # -------------------------------------------------------------------------- estimate

    def _heavy(self) -> tuple[np.ndarray, np.float32]:
        """Positions of the heavy tokens (at least ``HEAVY_SHARE`` of the weight), and that floor."""
        floor = np.float32(self.total * HEAVY_SHARE)
        heavy = nonzero_positions(np.greater_equal(self.weights, floor, out=self.mask))
        self._mask_key = None
        return heavy, floor

    def _estimate(self, heavy: np.ndarray, heavy_floor: np.float32) -> _Estimate:
        """The running weight estimated from the heavy tokens and a strided sample of the rest.

        The sample is scaled to the light tokens' exact total (the total minus the heavy ones),
        not by the stride: a ratio estimate, whose error at a fraction f of the light weight
        shrinks with f (1 - f). At p = 0.95 the first exact sum then lands ~4x closer to the
        crossing on a flat distribution, and the band is that much narrower.
        """
        n = self.n
        stride = max(1, n // min(SAMPLE, max(256, int(n * SAMPLE_SHARE))))
        sample_w = self.weights[::stride].astype(np.float64)
        sample_w[sample_w >= heavy_floor] = 0.0  # heavy tokens are counted exactly
        heavy_w = self.weights[heavy].astype(np.float64)
        sampled = float(sample_w.sum())
        light = self.total - float(heavy_w.sum())
        sample_w *= light / sampled if sampled > 0.0 and light > 0.0 else stride
        keys = np.concatenate([self.keys[heavy], self.keys[::stride]])
        w = np.concatenate([heavy_w, sample_w])
        var = np.concatenate([np.zeros(heavy.shape[0]), sample_w * sample_w])
        order = self._key_order(keys)
        return _Estimate(keys[order], np.cumsum(w[order]), np.cumsum(var[order]))

    def _key_order(self, keys: np.ndarray) -> np.ndarray:
        """A permutation sorting ``keys`` in key order (ties in any order)."""
        if keys.dtype == np.float32 and keys.shape[0] >= COMPOSITE_SORT_MIN:
            return _composite_order(keys, self.descending, np.arange(keys.shape[0], dtype=np.uint64))
        return np.argsort(-keys if self.descending else keys)

    def _reached(self, mass: float, target: float, strict: bool) -> bool:
        return mass > target if strict else mass >= target

    def _band_key(self, est: _Estimate, i0: int, needed: float, upward: bool, sigmas: float) -> float:
        """A key beyond the sample key ``i0`` (``upward``: after it, else before it) such that
        the band between them is estimated to weigh more than ``needed`` by ``sigmas`` standard
        deviations of the band's own estimate; the last (first) key if no sample key is enough."""
        if upward:  # bands (keys[i0], keys[j]] for j > i0
            band = est.cum[i0 + 1 :] - est.cum[i0]
            spread = np.sqrt(np.maximum(est.var[i0 + 1 :] - est.var[i0], 0.0))
            ok = np.flatnonzero(band - sigmas * spread > needed)
            return float(est.keys[i0 + 1 + ok[0]]) if ok.size else self.last
        # bands (keys[j], keys[i0]] for j < i0: the tokens after sample j up to sample i0
        band = est.cum[i0] - est.cum[:i0]
        spread = np.sqrt(np.maximum(est.var[i0] - est.var[:i0], 0.0))
        ok = np.flatnonzero(band - sigmas * spread > needed)
        return float(est.keys[ok[-1]]) if ok.size else self.first

    # -------------------------------------------------------------------------- the cut

    def solve(self, target: float, strict: bool, min_keep: int) -> PrefixCut:
        heavy, heavy_floor = self._heavy()
        cut = self._solve_among_heavy(heavy, target, strict, min_keep)
        if cut is not None:
            return cut
        est = self._estimate(heavy, heavy_floor)
        # The exact sum where the estimate crosses the target.
        i0 = int(np.searchsorted(est.cum, target, side="right" if strict else "left"))
        i0 = min(i0, est.keys.shape[0] - 1)
        p0 = self._probe(float(est.keys[i0]))
        sigmas = MARGIN_SIGMAS
        for _ in range(6):  # widen the band until the crossing is inside (almost always at once)
            if self._reached(p0.mass, target, strict):
                if p0.positions is not None and p0.count <= SHELL_LIMIT:  # few tokens: sort them all
                    low, band = _Probe(self.first, 0.0, 0, np.empty(0, dtype=np.intp)), p0.positions
                    band_weights = self.weights[band]
                    break
                # The crossing is at or before k0: a band (k1, k0] heavy enough to bring k1 under.
                k1 = self._band_key(est, i0, p0.mass - target, upward=False, sigmas=sigmas)
                band = self._between(k1, p0)
                band_weights = self.weights[band]
                band_mass = float(np.sum(band_weights, dtype=np.float64))
                low = _Probe(k1, max(p0.mass - band_mass, 0.0), p0.count - band.shape[0])
                if k1 == self.first or not self._reached(low.mass, target, strict):
                    if p0.positions is not None:
                        low.positions = p0.positions[~self._after(self.keys[p0.positions], k1)]
                    break
            else:
                # The crossing is after k0: a band (k0, k1] heavy enough to bring k1 over.
                k1 = self._band_key(est, i0, target - p0.mass, upward=True, sigmas=sigmas)
                band = self._between(p0.key, k1)
                low = p0
                band_weights = self.weights[band]
                band_mass = float(np.sum(band_weights, dtype=np.float64))
                if k1 == self.last or self._reached(p0.mass + band_mass, target, strict):
                    break
            sigmas *= 4
        else:  # pragma: no cover - the estimate was useless; sort everything
            return _solve_sorted(
                self.keys, self.weights, self.ids, target, self.descending, strict, min_keep, 0.0, 0, np.arange(self.n)
            )
        if min_keep > low.count + band.shape[0]:  # pragma: no cover - min_keep reaches past the band
            return _solve_sorted(
                self.keys, self.weights, self.ids, target, self.descending, strict, min_keep,
                low.mass, low.count, self._between(low.key, self.last),
            )
        return self._solve_band(target, strict, min_keep, low, band, band_weights)

    def _solve_among_heavy(self, heavy: np.ndarray, target: float, strict: bool, min_keep: int) -> PrefixCut | None:
        """The cut without any estimate when the heavy tokens alone reach the target (a peaked
        distribution): the tokens at or before the key where they do weigh at least as much, so
        the crossing is among them; one compare finds them and, if they are few, they are
        sorted. None (the general path) if they are not few."""
        weights = self.weights[heavy].astype(np.float64)
        if heavy.shape[0] == 0 or not self._reached(float(weights.sum()), target, strict):
            return None
        keys = self.keys[heavy]
        order = self._key_order(keys)
        j = int(np.searchsorted(np.cumsum(weights[order]), target, side="right" if strict else "left"))
        p0 = self._probe(float(keys[order[min(j, heavy.shape[0] - 1)]]))
        if p0.positions is None or p0.count > SHELL_LIMIT or min_keep > p0.count:
            return None
        return _solve_sorted(
            self.keys, self.weights, self.ids, target, self.descending, strict, min_keep, 0.0, 0, p0.positions,
            np.empty(0, dtype=np.intp),
        )

    def _solve_band(
        self, target: float, strict: bool, min_keep: int, low: _Probe, band: np.ndarray, weights: np.ndarray
    ) -> PrefixCut:
        """The cut, inside ``band`` (ascending positions of the tokens right after ``low`` in
        key order; ``weights`` theirs).

        A band of more than ``SHELL_LIMIT`` tokens (a flat distribution's cut falls among many
        near-equal keys) is split into ~256-token buckets of equal key width: one weighted
        ``bincount`` gives every bucket's exact weight, so only the bucket where the running
        weight crosses the target is kept for the next round (or the sort). Bucket numbers are
        a monotonic function of the key, so buckets follow the key order and ties share one.
        """
        keys = self.keys[band]
        while band.shape[0] > SHELL_LIMIT:
            start, end = (keys.max(), keys.min()) if self.descending else (keys.min(), keys.max())
            if not np.isfinite(end):  # banned tokens' infinite keys: they go in the last bucket
                finite = keys[np.isfinite(keys)]
                end = (finite.min() if self.descending else finite.max()) if finite.size else end
            buckets = band.shape[0] // 256
            scale = buckets / abs(float(end) - float(start)) if start != end else math.inf
            if not (np.isfinite(start) and np.isfinite(end) and scale < 1e38):
                break  # one key throughout (a tie), or nearly: sort the band
            # the distance from the band's first key, in key order, scaled to [0, buckets]
            offset = np.subtract(start, keys) if self.descending else np.subtract(keys, start)
            offset *= np.float32(scale)
            np.minimum(offset, np.float32(buckets - 1), out=offset)
            bucket = offset.astype(np.intp)
            cum = np.cumsum(np.bincount(bucket, weights=weights, minlength=buckets))
            cum += low.mass
            b = min(int(np.searchsorted(cum, target, side="right" if strict else "left")), buckets - 1)
            inside = np.flatnonzero(bucket == b)
            if inside.shape[0] == band.shape[0]:
                break  # pragma: no cover - one bucket holds the band (keys far apart at its ends)
            earlier = bucket < b
            count = low.count + int(np.count_nonzero(earlier))
            if count + inside.shape[0] < min_keep:  # pragma: no cover
                break  # min_keep reaches past the crossing bucket: sort the whole band
            positions = None
            if low.positions is not None:
                positions = np.concatenate([low.positions, band[earlier]])
            low = _Probe(low.key, float(cum[b - 1]) if b else low.mass, count, positions)
            band, keys, weights = band[inside], keys[inside], weights[inside]
        if low.positions is not None and not _is_ascending(low.positions):
            low.positions = np.sort(low.positions)
        return _solve_sorted(
            self.keys, self.weights, self.ids, target, self.descending, strict, min_keep,
            low.mass, low.count, band, low.positions,
        )
