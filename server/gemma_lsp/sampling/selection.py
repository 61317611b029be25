"""Selectors: the last stage of a chain, which picks the token."""

from __future__ import annotations

import math

import numpy as np

from .candidates import ORDER_BY_ID, Candidates, Cut, block_cumsum, locate_invalid
from .draw import draw_index, draw_index_blocked
from .stage import Stage
from .vector import nonzero_positions

SPARSE_DRAW_LIMIT = 4096  # dense sets with more members are drawn from without materialising
REJECTION_TRIES = 256
UNIFORM_BATCH = 2048
UNIFORM_BATCHES = 4


class GreedyChoice(Stage):
    """The most likely token (ties: the lowest token id, as llama.cpp's greedy sampler)."""

    name = "greedy"
    selects = True
    validates_input = True

    def apply(self, c: Candidates) -> None:
        if c.is_dense and c.cut is None:
            token = int(np.argmax(c.logits))  # a NaN anywhere wins argmax, so this also validates
            value = c.logits[token]
            if not (value < np.inf) or value == -np.inf:
                raise locate_invalid(c.logits, None)
            c.select(token)
            return
        c.materialize()
        m = np.float32(c.max_logit())
        at_max = np.flatnonzero(c.logits == m)
        c.select(int(c.ids[at_max].min()))


class RandomChoice(Stage):
    """A token drawn from the softmax of the remaining candidates' logits.

    Uses a numpy ``Generator`` (PCG64) seeded per request: the same seed and logits always give
    the same tokens. ``seed=None`` draws fresh entropy at every reset.
    """

    name = "distribution"
    selects = True
    validates_input = True

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def apply(self, c: Candidates) -> None:
        if c.is_dense:
            if c.cut is None:
                dense = c.weights()
                c.select(draw_index_blocked(dense.values, dense.block_cumsum(), self._rng.random()))
                return
            if c.cut.count > SPARSE_DRAW_LIMIT and self._draw_from_cut(c):
                return
            c.materialize()
        _in_id_order(c)
        weights = np.exp(c.logits - np.float32(c.max_logit()))
        c.select(int(c.ids[draw_index(weights, self._rng.random())]))

    def _draw_from_cut(self, c: Candidates) -> bool:
        """Draw from a large dense cut without materialising it (rejection sampling).

        The target is ``p_i ~ exp(logit_i / T)`` over the members, T the pending temperature.
        With weights cached by the stage that made the cut (``exp(logit)``), proposals follow
        them and are accepted with probability ``exp((1/T - 1) (logit - max))`` (T <= 1).
        Otherwise proposals are uniform over the vocabulary, accepted with probability
        ``exp((logit - max) / T)``. Both are exact; proposals go in vectorised batches and the
        first accepted one wins, so the result depends only on the seed. Returns False (the
        caller then materialises) if acceptance is too rare.
        """
        cut = c.cut
        assert cut is not None
        top = c.array_max()
        logits = c.logits
        cached = c.cached_weights()
        if cached is not None and c.divisor <= 1.0:
            exponent = 1.0 / c.divisor - 1.0
            cum = cached.block_cumsum()
            for _ in range(REJECTION_TRIES):
                i = draw_index_blocked(cached.values, cum, self._rng.random())
                if not cut.contains(i):
                    continue
                if exponent > 0.0 and self._rng.random() >= math.exp(exponent * (float(logits[i]) - top)):
                    continue
                c.select(i)
                return True
            return False  # pragma: no cover - members carry almost no probability
        inverse_t = 1.0 / c.divisor
        for _ in range(UNIFORM_BATCHES):
            proposals = self._rng.integers(0, c.n_vocab, UNIFORM_BATCH)
            u = self._rng.random(UNIFORM_BATCH)
            values = logits[proposals]
            accepted = cut.contains_many(proposals) & (u < np.exp((values - np.float32(top)) * np.float32(inverse_t)))
            if accepted.any():
                c.select(int(proposals[int(np.argmax(accepted))]))
                return True
        return False


def _sampled_count(mask: np.ndarray) -> int:
    """The number of True values in ``mask`` estimated from every 64th (~3 us for 262,144)."""
    stride = 64 if mask.shape[0] >= 64 * 256 else 1
    return int(np.count_nonzero(mask[::stride])) * stride


def _in_id_order(c: Candidates) -> None:
    """Draw in ascending id order, so the token drawn depends on the set, not on how it was built."""
    if c.order != ORDER_BY_ID:
        c.keep(np.argsort(c.ids), ORDER_BY_ID)


class MirostatV2(Stage):
    """Mirostat 2.0: keep the tokens whose surprise ``-log2 p`` is at most ``mu``, draw one, then
    move ``mu`` towards the target surprise: ``mu -= eta * (surprise - tau)``. ``mu`` starts at
    ``2 * tau`` and is reset per request.

    On a dense set the cut ``-log2 p_i <= mu`` is the logit threshold
    ``logit_i >= ln Z - mu ln 2`` once the log-sum-exp ``ln Z`` is known: no sort.

    Basu, Ramachandran, Keskar & Varshney (2021), "Mirostat: A Neural Text Decoding Algorithm
    that Directly Controls Perplexity", ICLR.
    """

    name = "mirostat_v2"
    selects = True
    validates_input = True

    def __init__(self, tau: float = 5.0, eta: float = 0.1, seed: int | None = None) -> None:
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError("mirostat_v2.tau must be a finite number > 0")
        if not (math.isfinite(eta) and eta > 0):
            raise ValueError("mirostat_v2.eta must be a finite number > 0")
        self.tau = float(tau)
        self.eta = float(eta)
        self.seed = seed
        self.mu = float(np.float32(2.0 * self.tau))
        self._rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self.mu = float(np.float32(2.0 * self.tau))
        self._rng = np.random.default_rng(self.seed)

    def apply(self, c: Candidates) -> None:
        mask = self._truncate(c)
        if c.is_dense:  # a large kept set: draw from the weights _truncate() computed, masked
            dense = c.cached_weights()
            assert dense is not None
            values = dense.values
            kept = mask if c.cut is not None else None  # None: every token is kept
            cum = dense.block_cumsum() if kept is None else block_cumsum(values, kept)
            i = draw_index_blocked(values, cum, self._rng.random(), kept)
            self.observe(float(values[i]) / float(cum[-1]))
            c.select(i)
            return
        _in_id_order(c)
        weights = np.exp(c.logits - np.float32(c.max_logit()))
        i = draw_index(weights, self._rng.random())
        self.observe(float(weights[i]) / float(weights.sum(dtype=np.float64)))
        c.select(int(c.ids[i]))

    def truncate(self, c: Candidates) -> None:
        """Keep the tokens with surprise at most ``mu`` (always at least the most likely one)."""
        self._truncate(c)

    def _truncate(self, c: Candidates) -> np.ndarray | None:
        """:meth:`truncate`; returns the membership mask of a dense set left as a lazy cut.

        A dense set keeping more than ``SPARSE_DRAW_LIMIT`` tokens (Mirostat's mu grows on a
        peaked distribution until the cut keeps most of the vocabulary) is not extracted
        (~0.1 ms for the ids, ~0.2 ms for the logits, another exp): it stays dense, with a
        :class:`Cut` unless every token is kept, and :meth:`apply` draws from its weights
        through the mask (block sums of the masked weights, ~0.1 ms). Whether the set is small
        is read off every 64th token first; either way the result is the same.
        """
        if c.is_dense and c.cut is None:
            dense = c.weights()  # applies any pending temperature
            threshold = dense.shift + math.log(dense.total()) - self.mu * math.log(2.0)
            bound = np.float32(threshold)
            mask = np.greater_equal(c.logits, bound, out=c.workspace.array("mask", np.bool_))
            ids = None
            if _sampled_count(mask) <= SPARSE_DRAW_LIMIT // 4:  # small: extract without counting
                ids = nonzero_positions(mask, likely_sparse=True)
                count = ids.shape[0]
            else:
                count = int(np.count_nonzero(mask))
            if count > SPARSE_DRAW_LIMIT:  # stays dense (a lazy cut): extracting it costs more
                if count < c.n_vocab:       # than drawing through its mask
                    cut = Cut(c.logits, float(bound), True, np.empty(0, np.int64), count)
                    c.set_cut(cut.remember_mask(c.workspace, "mask"))
                return mask
            if count == 0:
                ids = np.array([int(np.argmax(c.logits))])
            elif ids is None:
                ids = nonzero_positions(mask, count)
            c.keep_sparse(ids, c.logits[ids], "id")
            return None
        c.materialize()
        m = c.max_logit()
        weights = np.exp(c.logits - np.float32(m))
        threshold = m + math.log(float(weights.sum(dtype=np.float64))) - self.mu * math.log(2.0)
        keep = np.flatnonzero(c.logits >= threshold)
        if keep.size == 0:
            at_max = np.flatnonzero(c.logits == np.float32(m))
            keep = np.array([at_max[np.argmin(c.ids[at_max])]])
        if keep.size < c.size:
            c.keep(keep)
        return None

    def observe(self, probability: float) -> None:
        """Update ``mu`` after a token of (renormalised) ``probability`` was chosen (float32)."""
        surprise = np.float32(-math.log2(probability)) if probability > 0 else np.float32(np.inf)
        error = surprise - np.float32(self.tau)
        self.mu = float(np.float32(self.mu) - np.float32(self.eta) * error)
