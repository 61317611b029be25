"""Drawing one index in proportion to non-negative weights (inverse CDF), without a full cumsum.

numpy's cumsum costs ~4 ns per element, so for large arrays the draw goes through per-block sums
(see :func:`gemma_lsp.sampling.candidates.block_cumsum`): pick the block, then the index inside it.
"""

from __future__ import annotations

import numpy as np

from .candidates import BLOCK, block_cumsum


def draw_index(weights: np.ndarray, u: float) -> int:
    """An index ``i`` with probability ``weights[i] / weights.sum()``, for ``u`` uniform in [0, 1)."""
    if weights.shape[0] <= 16 * BLOCK:  # a plain cumsum is as fast up to ~4,096 weights
        cum = np.cumsum(weights, dtype=np.float64)
        return _index_in(weights, cum, u * cum[-1])
    return draw_index_blocked(weights, block_cumsum(weights), u)


def draw_index_blocked(weights: np.ndarray, cum_blocks: np.ndarray, u: float, mask: np.ndarray | None = None) -> int:
    """:func:`draw_index` given ``block_cumsum(weights)`` (reused across draws). With a bool
    ``mask``, from the weights where it is True, given ``block_cumsum(weights, mask)``."""
    target = u * cum_blocks[-1]
    b = min(int(np.searchsorted(cum_blocks, target, side="right")), cum_blocks.shape[0] - 1)
    while b > 0 and cum_blocks[b] == cum_blocks[b - 1]:  # an empty block (rounding at its edge)
        b -= 1
    start = b * BLOCK
    segment = weights[start : start + BLOCK]
    if mask is not None:
        segment = segment * mask[start : start + BLOCK]
    cum = np.cumsum(segment, dtype=np.float64)
    before = cum_blocks[b - 1] if b else 0.0
    return start + _index_in(segment, cum, target - before)


def _index_in(weights: np.ndarray, cum: np.ndarray, target: float) -> int:
    i = min(int(np.searchsorted(cum, target, side="right")), weights.shape[0] - 1)
    if weights[i] > 0:
        return i
    # Rounding put the target past the last positive weight (or on a zero): take the nearest one.
    nonzero = np.flatnonzero(weights)
    if nonzero.size == 0:
        raise ValueError("cannot draw from all-zero weights")
    before = nonzero[nonzero < i]
    return int(before[-1]) if before.size else int(nonzero[0])
