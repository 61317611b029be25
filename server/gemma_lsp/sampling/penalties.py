"""Samplers that edit logits of chosen tokens: repetition penalties and logit bias."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping

import numpy as np

from .candidates import Candidates
from .stage import Stage


class Penalties(Stage):
    """Penalise tokens seen among the last ``last_n`` accepted tokens.

    For a token seen ``c`` times: its logit is divided by ``repeat`` if positive, multiplied by it
    if not (the repetition penalty of Keskar, McCann, Varshney, Xiong & Socher (2019), "CTRL: A
    Conditional Transformer Language Model for Controllable Generation", with the sign fix that
    llama.cpp uses), then ``c * frequency + presence`` is subtracted (the frequency and presence
    penalties of the OpenAI API). The arithmetic is float32, as in llama.cpp.
    """

    name = "penalties"

    def __init__(self, last_n: int = 64, repeat: float = 1.0, frequency: float = 0.0, presence: float = 0.0) -> None:
        if last_n < 0:
            raise ValueError("penalties.last_n must be >= 0")
        if not repeat > 0 or not math.isfinite(repeat):
            raise ValueError("penalties.repeat must be a finite number > 0")
        if not (math.isfinite(frequency) and math.isfinite(presence)):
            raise ValueError("penalties.frequency and penalties.presence must be finite")
        self.last_n = int(last_n)
        self.repeat = float(repeat)
        self.frequency = float(frequency)
        self.presence = float(presence)
        self._recent: deque[int] = deque(maxlen=max(self.last_n, 1))
        self._counts: Counter[int] = Counter()

    @property
    def is_noop(self) -> bool:
        return self.last_n == 0 or (self.repeat == 1.0 and self.frequency == 0.0 and self.presence == 0.0)

    def accept(self, token: int) -> None:
        if self.last_n == 0:
            return
        if len(self._recent) == self.last_n:
            old = self._recent[0]
            self._counts[old] -= 1
            if self._counts[old] == 0:
                del self._counts[old]
        self._recent.append(int(token))
        self._counts[int(token)] += 1

    def reset(self) -> None:
        self._recent.clear()
        self._counts.clear()

    def apply(self, c: Candidates) -> None:
        if self.is_noop or not self._counts:
            return
        tokens = np.fromiter(self._counts.keys(), dtype=np.int64, count=len(self._counts))
        counts = np.fromiter(self._counts.values(), dtype=np.float32, count=len(self._counts))
        positions, found = positions_of(c, tokens)
        if positions.size == 0:
            return
        counts = counts[found]
        values = c.logits[positions]
        repeat = np.float32(self.repeat)
        values = np.where(values <= 0, values * repeat, values / repeat).astype(np.float32)
        values -= counts * np.float32(self.frequency) + np.float32(self.presence)
        c.edit_logits(positions, values)


class LogitBias(Stage):
    """Add a fixed bias to the logits of chosen tokens; a bias of ``-inf`` bans the token."""

    name = "logit_bias"

    def __init__(self, bias: Mapping[int, float]) -> None:
        for token, value in bias.items():
            if int(token) < 0:
                raise ValueError(f"logit_bias.bias: token id {token} is negative")
            if math.isnan(value) or value == math.inf:
                raise ValueError(f"logit_bias.bias: the bias of token {token} must be finite or -inf")
        self.bias = {int(t): float(v) for t, v in bias.items()}
        self._tokens = np.fromiter(self.bias.keys(), dtype=np.int64, count=len(self.bias))
        self._values = np.fromiter(self.bias.values(), dtype=np.float32, count=len(self.bias))

    def apply(self, c: Candidates) -> None:
        if not self.bias:
            return
        positions, found = positions_of(c, self._tokens)
        if positions.size == 0:
            return
        c.edit_logits(positions, c.logits[positions] + self._values[found])


def positions_of(c: Candidates, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where ``tokens`` are in ``c``'s arrays, and which of ``tokens`` are present at all."""
    if c.is_dense and c.cut is None:
        found = np.flatnonzero(tokens < c.n_vocab)
        return tokens[found], found
    ids = c.token_ids()
    order = np.argsort(tokens)
    sorted_tokens = tokens[order]
    at = np.searchsorted(sorted_tokens, ids)
    at[at == sorted_tokens.size] = 0
    hit = np.flatnonzero(sorted_tokens[at] == ids)
    return hit, order[at[hit]]
