"""Locally typical sampling (typical-p)."""

from __future__ import annotations

import numpy as np

from .candidates import ORDER_BY_ID, Candidates, Cut
from .masscut import SMALL, prefix_reaching
from .stage import Stage
from .vector import dot, weighted_sum

MATERIALIZE_LIMIT = 8192  # larger typical sets stay dense (lazy cut) until a selector needs them


class Typical(Stage):
    """Keep the tokens whose surprise ``-ln p`` is closest to the entropy ``H``, in that order,
    until their probability exceeds ``p`` (at least ``min_keep`` tokens).

    Since ``-ln p_i - H = a - logit_i`` with ``a`` the probability-weighted mean logit, the order is
    the distance ``|logit_i - a|``: the kept set is a band of logits around ``a``.

    Meister, Pimentel, Wiher & Cotterell (2023), "Locally Typical Sampling", TACL 11.
    """

    name = "typical"
    validates_input = True

    def __init__(self, p: float, min_keep: int = 1) -> None:
        if not 0.0 < p <= 1.0:
            raise ValueError("typical.p must be in (0, 1]")
        if min_keep < 1:
            raise ValueError("typical.min_keep must be at least 1")
        self.p = float(p)
        self.min_keep = int(min_keep)

    def apply(self, c: Candidates) -> None:
        if self.p >= 1.0 or c.size <= 1:
            if c.cut is None:
                c.max_logit()  # validate, as promised (validates_input)
            return
        if c.is_dense and c.cut is None and c.n_vocab > SMALL:
            self._apply_dense(c)
            return
        c.materialize()
        self._apply_sparse(c)

    def _apply_sparse(self, c: Candidates) -> None:
        logits = c.logits
        weights = np.exp(logits - np.float32(c.max_logit())).astype(np.float64)
        total = float(weights.sum())
        live = weights > 0  # 0 * ln 0 = 0: banned and underflowed tokens carry no entropy
        centre = dot(weights[live], logits[live].astype(np.float64)) / total
        keys = np.abs(logits.astype(np.float64) - centre)
        n = logits.shape[0]
        scratch = (np.empty(n, np.bool_), np.empty(n, np.bool_))
        cut = prefix_reaching(
            keys, weights, self.p * total, ids=c.ids, strict=True, min_keep=self.min_keep, total=total,
            scratch=scratch,
        )
        if cut.count < n:
            members = Cut(keys, cut.bound, False, cut.excluded, cut.count).mask(scratch[0])
            c.keep(np.flatnonzero(members))

    def _apply_dense(self, c: Candidates) -> None:
        dense = c.weights()  # applies any pending temperature first
        logits = c.logits
        total = dense.total()
        ws = c.workspace
        centre = weighted_sum(dense.values, logits, ws.array("typical.keys")) / total
        keys = ws.array("typical.keys")
        np.subtract(logits, np.float32(centre), out=keys)
        np.abs(keys, out=keys)
        scratch = (ws.array("scratch.mask", np.bool_), ws.array("scratch.mask2", np.bool_))
        cut = prefix_reaching(
            keys, dense.values, self.p * total, strict=True, min_keep=self.min_keep, total=total, scratch=scratch
        )
        if cut.count >= c.n_vocab:
            return
        if cut.members is not None and cut.count <= MATERIALIZE_LIMIT:  # extracted on the way
            c.keep_sparse(cut.members, logits[cut.members], ORDER_BY_ID)
            return
        c.set_cut(Cut(keys, cut.bound, False, cut.excluded, cut.count))
        if cut.count <= MATERIALIZE_LIMIT:
            c.materialize()
