"""Token samplers (numpy only).

A sampler turns one step's next-token logits into a token id. The generation loop in
``engine/`` only relies on the :class:`Sampler` protocol below (``sample``, ``accept``,
``reset``), so any chain plugs in without touching the loop.

The samplers follow llama.cpp's design: small stages (:mod:`.truncation`, :mod:`.typical`,
:mod:`.temperature`, :mod:`.penalties`, :mod:`.selection`) narrow or rescale one shrinking
:class:`Candidates` set, and a :class:`SamplerChain` runs them in order, the last one picking the
token. :func:`build_sampler` makes a chain from config specs. The maths and papers are in
``docs/sampling.md``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .build import build_sampler
from .candidates import Candidates, Workspace
from .chain import SamplerChain
from .errors import InvalidLogits, InvalidSamplerSpec
from .penalties import LogitBias, Penalties
from .selection import GreedyChoice, MirostatV2, RandomChoice
from .stage import Stage
from .temperature import DynamicTemperature, TemperatureScaling
from .truncation import MinP, TopByLogit, TopK, TopP
from .typical import Typical


class Sampler(Protocol):
    def sample(self, logits: np.ndarray) -> int:
        """Pick the next token from full-vocabulary logits (float32, shape ``(n_vocab,)``)."""

    def accept(self, token: int) -> None:
        """Tell the sampler which token was finally emitted (for stateful samplers)."""

    def reset(self) -> None:
        """Forget per-sequence state; called at the start of every request."""


class Greedy(SamplerChain):
    """Always the most likely token (ties go to the lowest id, as llama.cpp's greedy)."""

    def __init__(self) -> None:
        super().__init__([GreedyChoice()])


class Temperature(SamplerChain):
    """Plain temperature sampling with a seeded numpy Generator; temperature <= 0 is greedy."""

    def __init__(self, temperature: float, seed: int | None = None) -> None:
        self.temperature = float(temperature)
        self.seed = seed
        super().__init__([TemperatureScaling(self.temperature), RandomChoice(seed)])


__all__ = [
    "Candidates",
    "DynamicTemperature",
    "Greedy",
    "GreedyChoice",
    "InvalidLogits",
    "InvalidSamplerSpec",
    "LogitBias",
    "MinP",
    "MirostatV2",
    "Penalties",
    "RandomChoice",
    "Sampler",
    "SamplerChain",
    "Stage",
    "Temperature",
    "TemperatureScaling",
    "TopByLogit",
    "TopK",
    "TopP",
    "Typical",
    "Workspace",
    "build_sampler",
]
