"""Truncation to "the top by logit": top-k, top-p (nucleus) and min-p.

Each of the three keeps a prefix of the tokens sorted by logit (ties by token id), so a run of
them can be computed as one (:class:`TopByLogit`, which the chain builds for consecutive ones):
the result is the shortest of the prefixes, evaluated in order. On a dense 262,144-token set this
avoids any sort and, usually, any softmax:

* min-p's prefix is ``logit >= max_logit + ln p`` (a compare and a count);
* top-k's prefix is found from a threshold estimated on a strided sample, then exact;
* top-p's prefix depends on the normaliser Z of its input. When a cheaper filter in the run
  keeps a shorter prefix S anyway, it is enough to show that top-p keeps at least |S| tokens,
  which lower bounds on Z from a count or two of tokens below S usually prove; only otherwise is
  Z computed over the whole vocabulary.
"""

from __future__ import annotations

import math

import numpy as np

from .candidates import ORDER_BY_ID, ORDER_BY_LOGIT, Candidates, Cut
from .masscut import SMALL, canonical_order, prefix_reaching
from .stage import Stage
from .vector import nonzero_positions

ROUNDING_MARGIN = 1e-6  # relative slack before a bound is trusted to decide a cut
EXTRACT_LIMIT = 4096  # larger threshold-defined sets stay dense (a lazy cut)
BAND_DEPTH = 8.0  # top-p bounds: exact weights of tokens down to this far under the prefix ...
BAND_LIMIT = 16384  # ... if there are at most this many
_NONE = np.empty(0, dtype=np.int64)
HEAD = 64  # top-p on a sparse set first looks for its cut among this many most likely tokens


class TopK(Stage):
    """Keep the ``k`` most likely tokens (ties at the cut: lower token id).

    Fan, Lewis & Dauphin (2018), "Hierarchical Neural Story Generation".
    """

    name = "top_k"

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError("top_k.k must be at least 1")
        self.k = int(k)

    def apply(self, candidates: Candidates) -> None:
        apply_top_by_logit(candidates, [self])

    def apply_sparse(self, c: Candidates) -> None:
        if self.k >= c.size:
            return
        if c.order == ORDER_BY_LOGIT:
            c.keep(np.arange(self.k), ORDER_BY_LOGIT)
        else:
            c.keep(top_positions(c.logits, c.ids, self.k), ORDER_BY_LOGIT)


class TopP(Stage):
    """Nucleus sampling: keep the most likely tokens until their probability reaches ``p``
    (at least ``min_keep`` tokens). The token that crosses ``p`` is kept.

    Holtzman, Buys, Du, Forbes & Choi (2020), "The Curious Case of Neural Text Degeneration".
    """

    name = "top_p"

    def __init__(self, p: float, min_keep: int = 1) -> None:
        if not 0.0 < p <= 1.0:
            raise ValueError("top_p.p must be in (0, 1]")
        if min_keep < 1:
            raise ValueError("top_p.min_keep must be at least 1")
        self.p = float(p)
        self.min_keep = int(min_keep)

    @property
    def is_noop(self) -> bool:
        return self.p >= 1.0

    def apply(self, candidates: Candidates) -> None:
        apply_top_by_logit(candidates, [self])

    def apply_sparse(self, c: Candidates) -> None:
        if self.is_noop or c.size <= self.min_keep:
            return
        m = c.max_logit()
        weights = np.exp(c.logits - np.float32(m))
        count = top_p_count(c.logits, c.ids, weights, self.p, self.min_keep, c.order, c.workspace)
        _keep_top(c, count)


class MinP(Stage):
    """Keep tokens whose probability is at least ``p`` times the most likely token's
    (at least ``min_keep`` tokens): ``logit >= max_logit + ln p``, no softmax needed.

    Nguyen, Baker, Neo, Roush, Kirsch & Shwartz-Ziv (2024), "Turning Up the Heat: Min-p
    Sampling for Creative and Coherent LLM Outputs".
    """

    name = "min_p"

    def __init__(self, p: float, min_keep: int = 1) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError("min_p.p must be in [0, 1]")
        if min_keep < 1:
            raise ValueError("min_p.min_keep must be at least 1")
        self.p = float(p)
        self.min_keep = int(min_keep)

    @property
    def is_noop(self) -> bool:
        return np.float32(self.p) <= 0.0  # a p below float32's range is 0 for llama.cpp too

    def threshold(self, max_logit: float) -> np.float32:
        """``max_logit + ln p`` in float32 arithmetic, exactly as llama.cpp computes it."""
        return np.float32(max_logit) + np.float32(math.log(np.float32(self.p)))

    def apply(self, candidates: Candidates) -> None:
        apply_top_by_logit(candidates, [self])

    def apply_sparse(self, c: Candidates) -> None:
        if self.is_noop:
            return
        keep = np.flatnonzero(c.logits >= self.threshold(c.max_logit()))
        if keep.size >= min(self.min_keep, c.size):
            if keep.size < c.size:
                c.keep(keep)
        else:
            TopK(self.min_keep).apply_sparse(c)


class TopByLogit(Stage):
    """A run of top-k / top-p / min-p stages computed as one (same result as running them in turn)."""

    name = "top_by_logit"

    def __init__(self, stages: list[TopK | TopP | MinP]) -> None:
        self.stages = list(stages)

    def apply(self, candidates: Candidates) -> None:
        apply_top_by_logit(candidates, self.stages)

    def __repr__(self) -> str:
        return f"TopByLogit({self.stages!r})"


# --------------------------------------------------------------------------------------------


def apply_top_by_logit(c: Candidates, stages: list[TopK | TopP | MinP]) -> None:
    """Run top-k / top-p / min-p ``stages`` in order on ``c``."""
    active = [s for s in stages if not getattr(s, "is_noop", False)]
    if not active:
        return
    if c.is_dense and c.cut is None and c.n_vocab > SMALL and sum(isinstance(s, TopP) for s in active) <= 1:
        _DenseTopByLogit(c, active).run()
        return
    c.materialize()
    for stage in active:
        stage.apply_sparse(c)


def top_positions(logits: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest logits, ties by lower id, in that (descending) order."""
    n = logits.shape[0]
    if k >= n:
        return canonical_order(logits, ids, descending=True)
    part = np.argpartition(logits, n - k)
    kth = logits[part[n - k]]
    above = np.flatnonzero(logits > kth)
    ties = np.flatnonzero(logits == kth)
    need = k - above.size
    if need < ties.size:
        ties = ties[np.argsort(ids[ties], kind="stable")[:need]]
    positions = np.concatenate([above, ties])
    return positions[canonical_order(logits[positions], ids[positions], descending=True)]


def top_p_count(
    logits: np.ndarray, ids: np.ndarray, weights: np.ndarray, p: float, min_keep: int, order: str, workspace
) -> int:
    """How many tokens top-p keeps from a sparse set (``weights`` = exp(logit - max))."""
    n = logits.shape[0]
    total = float(np.sum(weights, dtype=np.float64))
    target = p * total
    if order == ORDER_BY_LOGIT:
        count = _first_reaching(weights, target)
    else:
        # The nucleus is usually among the few most likely tokens: sort only those first.
        head = top_positions(logits, ids, HEAD) if n > 4 * HEAD else None
        if head is not None and float(np.sum(weights[head], dtype=np.float64)) >= target:
            count = _first_reaching(weights[head], target)
        else:
            count = prefix_reaching(
                logits, weights, target, ids=ids, descending=True, total=total,
                scratch=_scratch(workspace, n),
            ).count
    return min(max(count, min_keep), n)


def _first_reaching(sorted_weights: np.ndarray, target: float) -> int:
    """How many of the (sorted) weights it takes for their running sum to reach ``target``."""
    return int(np.searchsorted(np.cumsum(sorted_weights, dtype=np.float64), target, side="left")) + 1


def _keep_top(c: Candidates, count: int) -> None:
    """Keep the ``count`` most likely tokens of a sparse set."""
    if count >= c.size:
        return
    TopK(count).apply_sparse(c)


def _scratch(workspace, n: int) -> tuple[np.ndarray, np.ndarray]:
    return workspace.array("scratch.mask", np.bool_)[:n], workspace.array("scratch.mask2", np.bool_)[:n]


class _DenseTopByLogit:
    """The fused evaluation of a run of prefix filters on a dense set (at most one top-p)."""

    def __init__(self, c: Candidates, stages: list[TopK | TopP | MinP]) -> None:
        c.apply_divisor()
        self.c = c
        self.logits = c.logits
        self.n = c.n_vocab
        self.stages = [s for s in stages if not (isinstance(s, TopK) and s.k >= self.n)]
        self.max = c.max_logit()
        self.mask = c.workspace.array("mask", np.bool_)
        self._mask_for: object = None

    def _count_at_least(self, threshold: float) -> int:
        """Tokens with ``logit >= threshold``; leaves their mask in ``self.mask``."""
        self._mask_for = threshold
        return int(np.count_nonzero(np.greater_equal(self.logits, threshold, out=self.mask)))

    def run(self) -> None:
        topp_at = next((i for i, s in enumerate(self.stages) if isinstance(s, TopP)), None)
        if topp_at is not None and topp_at > 0:
            self._run_in_order()  # a top-p after cheap filters: its input length matters
            return
        topp = self.stages[0] if topp_at == 0 else None
        cheap = self.stages[1:] if topp is not None else self.stages
        n = self.n
        k = min((s.k for s in cheap if isinstance(s, TopK)), default=n)
        min_ps = [s for s in cheap if isinstance(s, MinP)]
        if k >= n and not min_ps:
            if topp is not None:
                self._lone_top_p(topp)
            return
        # Only the shortest cheap prefix matters now: find it and extract it (or cut lazily).
        band = None
        if k < n:
            ids = top_positions_dense(self.logits, k, self.mask)
            logits = self.logits[ids]
            length = k
            for stage in min_ps:
                inside = int(np.count_nonzero(logits >= stage.threshold(self.max)))
                if inside < k:
                    length = min(length, max(min(stage.min_keep, n), inside))
            ids, logits, order = ids[:length], logits[:length], ORDER_BY_LOGIT
        else:
            best, best_len, best_count = None, n, n
            for stage in min_ps:
                threshold = stage.threshold(self.max)
                count = self._count_at_least(threshold)
                stage_len = max(min(stage.min_keep, n), count)
                if stage_len < best_len or best is None:
                    best, best_len, best_count = threshold, stage_len, count
            if best_len >= n and topp is None:
                return
            if best_len == best_count:
                if best_count > EXTRACT_LIMIT and (topp is None or self._top_p_keeps_all_above(topp, best, best_count)):
                    # Large and defined by a threshold: stay dense; selectors draw from it directly.
                    cut = Cut(self.logits, float(best), True, _NONE, best_count)
                    if self._mask_for is best:  # self.mask holds it: a later extraction reuses it
                        cut.remember_mask(self.c.workspace, "mask")
                    self.c.set_cut(cut)
                    return
                ids, band = self._extract_above(best, best_count, with_band=topp is not None)
                order = ORDER_BY_ID
            else:  # min_keep asked for more tokens than pass the threshold
                ids, order = top_positions_dense(self.logits, best_len, self.mask), ORDER_BY_LOGIT
            logits = self.logits[ids]
        if topp is not None:
            kept = self._top_p_of_everything(topp, ids, logits, band)
            if kept is not None and kept < ids.shape[0]:
                positions = top_positions(logits, ids, kept)
                ids, logits, order = ids[positions], logits[positions], ORDER_BY_LOGIT
        self.c.keep_sparse(ids, logits, order)

    def _extract_above(
        self, threshold: np.float32, count: int, with_band: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Ids of the tokens with ``logit >= threshold`` and, if asked and there are not too many,
        the logits of those in the band ``BAND_DEPTH`` under it (both from one extraction)."""
        if with_band and self._count_at_least(threshold - np.float32(BAND_DEPTH)) - count <= BAND_LIMIT:
            positions = nonzero_positions(self.mask)
            values = self.logits[positions]
            above = values >= threshold
            return positions[above], values[~above]
        if self._mask_for is not threshold:  # the mask may hold another threshold by now
            self._count_at_least(threshold)
        return nonzero_positions(self.mask, count), None

    def _run_in_order(self) -> None:
        """General case: walk the filters in order over prefix lengths of the sorted tokens."""
        n = self.n
        # Standalone prefix length of every cheap filter (None for top-p).
        lengths: list[int | None] = []
        thresholds: dict[int, np.float32] = {}
        for i, stage in enumerate(self.stages):
            if isinstance(stage, TopK):
                lengths.append(stage.k)
            elif isinstance(stage, MinP):
                thresholds[i] = stage.threshold(self.max)
                lengths.append(max(min(stage.min_keep, n), self._count_at_least(thresholds[i])))
            else:
                lengths.append(None)
        cheap = [x for x in lengths if x is not None]
        topp_at = next(i for i, s in enumerate(self.stages) if isinstance(s, TopP))
        # Extract the prefix that the result and the top-p input fit in.
        extent = max(min(cheap), min(x for x in lengths[:topp_at] if x is not None))
        ids, order = self._extract(extent, lengths, thresholds)
        logits = self.logits[ids]
        length = n
        for stage, standalone in zip(self.stages, lengths):
            if standalone is not None:
                length = min(length, standalone)
            else:
                length = min(length, self._top_p_of_prefix(stage, ids, logits, order, length))
        if length < ids.shape[0]:
            positions = top_positions(logits, ids, length)
            ids, logits, order = ids[positions], logits[positions], ORDER_BY_LOGIT
        self.c.keep_sparse(ids, logits, order)

    def _extract(
        self, extent: int, lengths: list[int | None], thresholds: dict[int, np.float32]
    ) -> tuple[np.ndarray, str]:
        """Token ids of the top-``extent`` prefix, and their order."""
        for i, threshold in thresholds.items():
            if lengths[i] == extent and self._count_at_least(threshold) == extent:
                return nonzero_positions(self.mask, extent), ORDER_BY_ID
        return top_positions_dense(self.logits, extent, self.mask), ORDER_BY_LOGIT

    def _top_p_of_prefix(
        self, stage: TopP, ids: np.ndarray, logits: np.ndarray, order: str, length: int
    ) -> int:
        """Top-p's length on the top-``length`` prefix (inside the extracted set)."""
        if length <= stage.min_keep:
            return length
        if length < ids.shape[0]:
            positions = top_positions(logits, ids, length)
            ids, logits, order = ids[positions], logits[positions], ORDER_BY_LOGIT
        weights = np.exp(logits - np.float32(self.max))
        return top_p_count(logits, ids, weights, stage.p, stage.min_keep, order, self.c.workspace)

    def _top_p_keeps_all_above(self, stage: TopP, threshold: np.float32, count: int) -> bool:
        """Whether top-p on the whole vocabulary keeps every token with ``logit >= threshold``
        (the set S), shown from counts alone.

        Top-p keeps all of S iff S without its last token weighs less than ``p Z``, i.e.
        ``(1 - p) W_S - w_last < p R`` with W_S the weight of S and R that of the other tokens.
        In units of ``exp(l - max)``: ``W_S <= count``, ``w_last >= exp(threshold - max)``, and R
        is at least the tokens in the unit band under the threshold times ``exp(threshold - 1 - max)``.
        """
        if count <= stage.min_keep:
            return True
        level = float(threshold) - 1.0
        near = self._count_at_least(level) - count
        smallest = math.exp(float(threshold) - self.max)
        rest_low = near * math.exp(level - self.max)
        return (1.0 - stage.p) * count - smallest < stage.p * rest_low * (1.0 - ROUNDING_MARGIN)

    def _top_p_of_everything(
        self, stage: TopP, ids: np.ndarray, logits: np.ndarray, band: np.ndarray | None = None
    ) -> int | None:
        """Top-p on the whole vocabulary: None if it keeps at least the extracted prefix S,
        else its exact length (< |S|). ``band``: logits of tokens under S already extracted."""
        size = ids.shape[0]
        if size <= stage.min_keep:
            return None
        weights = np.exp(logits - np.float32(self.max))
        mass = float(np.sum(weights, dtype=np.float64))
        before_last = mass - float(weights.min())  # S without its least likely token
        # Top-p keeps all of S if S minus its last token is below p * Z. Lower bounds on Z: the
        # exact weights of the tokens in a band under S's smallest logit if there are not too
        # many (peaked distributions), else their count times the band's smallest weight.
        floor = float(logits.min())
        target = before_last / (stage.p * (1.0 - ROUNDING_MARGIN))  # Z must exceed this
        if band is not None:
            band_mass = float(np.sum(np.exp(band - np.float32(self.max)), dtype=np.float64))
            if mass + band_mass > target:
                return None
        elif self._count_at_least(floor - BAND_DEPTH) - size <= BAND_LIMIT:
            band_logits = self.logits[nonzero_positions(self.mask)]
            below = band_logits < np.float32(floor)
            band_mass = float(np.sum(np.exp(band_logits[below] - np.float32(self.max)), dtype=np.float64))
            # tokens tied with S's smallest logit but left out of S (a top-k cut inside a tie)
            ties_out = int(np.count_nonzero(band_logits == np.float32(floor))) - int(
                np.count_nonzero(logits == np.float32(floor))
            )
            if mass + band_mass + ties_out * math.exp(floor - self.max) > target:
                return None
        else:
            level = floor - 1.0
            near = self._count_at_least(level) - size
            if mass + near * math.exp(level - self.max) > target:
                return None
        # Undecided by the bounds: the normaliser over the whole vocabulary, exactly.
        dense = self.c.weights()
        scale = math.exp(self.max - dense.shift)  # exp(l - max) -> the dense weights' units
        z = dense.total()
        if before_last * scale < stage.p * z:
            return None
        order = canonical_order(logits, ids, descending=True)
        cum = np.cumsum(weights[order], dtype=np.float64) * scale
        count = int(np.searchsorted(cum, stage.p * z, side="left")) + 1
        return min(max(count, stage.min_keep), size)

    def _lone_top_p(self, stage: TopP) -> None:
        """Top-p alone on a dense set: an exact cut found by bracketing, kept lazily."""
        c = self.c
        dense = c.weights()
        total = dense.total()
        cut = prefix_reaching(
            self.logits,
            dense.values,
            stage.p * total,
            descending=True,
            min_keep=stage.min_keep,
            total=total,
            scratch=_scratch(c.workspace, self.n),
        )
        c.set_cut(Cut(self.logits, cut.bound, True, cut.excluded, cut.count))


def top_positions_dense(logits: np.ndarray, k: int, mask: np.ndarray) -> np.ndarray:
    """Ids of the ``k`` largest logits of a whole-vocabulary array, ties by lower id, sorted.

    A threshold that keeps a little more than ``k`` tokens is read off a strided sample, the
    tokens above it are extracted with one compare, and those few are sorted exactly.
    """
    n = logits.shape[0]
    if 8 * k >= n:
        return top_positions(logits, np.arange(n), k)
    stride = max(1, n // 4096)
    sample = np.array(logits[::stride])
    rank = min(sample.shape[0] - 1, int(1.5 * k / stride) + 4)
    while True:
        threshold = np.partition(sample, sample.shape[0] - 1 - rank)[sample.shape[0] - 1 - rank]
        ids = nonzero_positions(np.greater_equal(logits, threshold, out=mask))
        if ids.shape[0] >= k:
            return ids[top_positions(logits[ids], ids, k)]
        if rank == sample.shape[0] - 1:  # pragma: no cover - sample minimum still too high
            return top_positions(logits, np.arange(n), k)
        rank = min(sample.shape[0] - 1, 4 * rank + 8)
