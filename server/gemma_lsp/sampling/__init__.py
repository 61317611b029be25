"""Token samplers (numpy only).

A sampler turns one step's next-token logits into a token id. The generation loop in
``engine/`` only relies on the :class:`Sampler` protocol below, so richer chains plug in
without touching the loop.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Sampler(Protocol):
    def sample(self, logits: np.ndarray) -> int:
        """Pick the next token from full-vocabulary logits (float32, shape ``(n_vocab,)``)."""

    def accept(self, token: int) -> None:
        """Tell the sampler which token was finally emitted (for stateful samplers)."""

    def reset(self) -> None:
        """Forget per-sequence state; called at the start of every request."""


class Greedy:
    """Always the most likely token (ties go to the lowest id, as llama.cpp's greedy)."""

    def sample(self, logits: np.ndarray) -> int:
        return int(np.argmax(logits))

    def accept(self, token: int) -> None:
        pass

    def reset(self) -> None:
        pass


class Temperature:
    """Plain temperature sampling with a seeded numpy Generator; temperature <= 0 is greedy."""

    def __init__(self, temperature: float, seed: int | None = None) -> None:
        self.temperature = float(temperature)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def sample(self, logits: np.ndarray) -> int:
        if self.temperature <= 0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self.temperature
        scaled -= scaled.max()
        probs = np.exp(scaled)
        probs /= probs.sum()
        return int(self._rng.choice(probs.shape[0], p=probs))

    def accept(self, token: int) -> None:
        pass

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
