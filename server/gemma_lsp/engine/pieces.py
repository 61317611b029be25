"""Token healing: the vocabulary's pieces sorted once, so the tokens that can spell out a given
text are found by binary search.

When the text before the cursor ends inside a word (``fie|``), its last token is an unnatural
cut (``fie`` where the model would write ``field``). Healing backs that token up and lets the
model write it again, constrained: each step may only choose a token whose piece starts with
what is left of the backed-up text (it may run past it: ``field_name``), or a piece that is a
proper prefix of it (then the rest is spelled by the next steps). Finding the first kind is a
range of the sorted pieces (two bisections, O(log V)); the second is one dictionary lookup per
prefix length of the backed-up text. Nothing scans the 262,144-token vocabulary per request.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np


def _after_all_with_prefix(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class PieceTable:
    """Every ordinary token's bytes, sorted; built once per loaded model (~0.5 s at 262k tokens)."""

    def __init__(self, vocabulary: Sequence[bytes]) -> None:
        order = sorted((i for i, piece in enumerate(vocabulary) if piece), key=vocabulary.__getitem__)  # no b""
        self._sorted = [vocabulary[i] for i in order]
        self._ids = np.asarray(order, dtype=np.int64)
        self._by_piece = dict(zip(reversed(self._sorted), reversed(order)))  # the lowest id of a piece

    def candidates(self, text: bytes) -> np.ndarray:
        """Ids of the tokens that may come next while ``text`` is still to be spelled out."""
        lo = bisect_left(self._sorted, text)
        after = _after_all_with_prefix(text)
        hi = bisect_left(self._sorted, after, lo) if after is not None else len(self._sorted)
        extending = self._ids[lo:hi]
        shorter = [self._by_piece[text[:k]] for k in range(1, len(text)) if text[:k] in self._by_piece]
        return np.concatenate([extending, np.asarray(shorter, dtype=np.int64)]) if shorter else extending

    def mask(self, logits: np.ndarray, text: bytes) -> np.ndarray:
        """``logits`` with every token that cannot continue ``text`` at -inf (a new array)."""
        allowed = self.candidates(text)
        masked = np.full_like(logits, -np.inf)
        masked[allowed] = logits[allowed]
        return masked
