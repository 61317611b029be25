"""Temperature scaling, fixed and entropy-driven (dynamic)."""

from __future__ import annotations

import math

import numpy as np

from .candidates import ORDER_BY_ID, Candidates, locate_invalid
from .stage import Stage

DENSE_MIN = 4096  # smaller vocabularies simply materialise
# Below this a temperature is greedy: dividing logits by it would overflow float32 (and is
# indistinguishable from greedy for any real logits anyway).
GREEDY_BELOW = 1e-20
from .vector import dot, weighted_sum


class TemperatureScaling(Stage):
    """Divide every logit by ``temperature``: below 1 sharpens the distribution, above 1 flattens
    it; 0 (or anything below 1e-20) keeps only the most likely token (greedy).

    The softmax temperature of the Boltzmann distribution, as used for neural text generation
    since Ackley, Hinton & Sejnowski (1985), "A Learning Algorithm for Boltzmann Machines".
    """

    name = "temperature"

    def __init__(self, temperature: float) -> None:
        if not math.isfinite(temperature):
            raise ValueError("temperature.temperature must be finite")
        self.temperature = float(temperature)

    def apply(self, c: Candidates) -> None:
        if self.temperature < GREEDY_BELOW:
            keep_most_likely(c)
        else:
            c.scale(self.temperature)


class DynamicTemperature(Stage):
    """Temperature chosen per token from the entropy of the candidates (llama.cpp's ``temp_ext``):

    ``T = T_min + (T_max - T_min) * (H / ln n) ** exponent`` with ``T_min = max(0, temperature -
    delta)``, ``T_max = temperature + delta``, ``H`` the entropy of the candidates' softmax and
    ``n`` their number. Confident (low-entropy) steps get a low temperature, uncertain ones a high
    one. ``delta = 0`` is plain temperature scaling.

    Zhang, Wang, Liu, Wu, Gou, Xia, Zhang & Chen (2024), "EDT: Improving Large Language Models'
    Generation by Entropy-based Dynamic Temperature Sampling"; first proposed as "DynaTemp" by
    kalomaze (2023) for llama.cpp.
    """

    name = "dynamic_temperature"

    def __init__(self, temperature: float, delta: float = 0.0, exponent: float = 1.0) -> None:
        if not (math.isfinite(temperature) and math.isfinite(delta) and math.isfinite(exponent)):
            raise ValueError("dynamic_temperature parameters must be finite")
        if delta < 0:
            raise ValueError("dynamic_temperature.delta must be >= 0")
        if exponent <= 0:
            raise ValueError("dynamic_temperature.exponent must be > 0")
        self.temperature = float(temperature)
        self.delta = float(delta)
        self.exponent = float(exponent)
        self.last_temperature: float | None = None  # the temperature used at the last step

    def apply(self, c: Candidates) -> None:
        if self.delta <= 0.0:
            self.last_temperature = self.temperature
            TemperatureScaling(self.temperature).apply(c)
            return
        if c.size <= 1:
            self.last_temperature = None
            return
        if c.is_dense and c.cut is None and c.n_vocab > DENSE_MIN:
            temperature = self._temperature_of_dense(c)
        else:
            c.materialize()
            temperature = self.temperature_for(c.logits, c.max_logit())
        self.last_temperature = temperature
        if temperature < GREEDY_BELOW:
            keep_most_likely(c)
        else:
            c.scale(temperature)

    def _temperature_of_dense(self, c: Candidates) -> float:
        """The temperature for a whole vocabulary, from its (workspace) softmax weights
        ``w = exp(l - shift)``: ``H = ln Z + shift - m - sum(w (l - m)) / Z`` with ``m`` the
        maximum, so that neither term is large when the distribution is peaked."""
        dense = c.weights()
        total = dense.total()
        top = c.max_logit()
        centred = c.workspace.array("dynamic_temperature.centred")
        np.subtract(c.logits, np.float32(top), out=centred)
        weighted = weighted_sum(dense.values, centred, c.workspace.array("dynamic_temperature.scratch"))
        entropy = math.log(total) + (dense.shift - top) - weighted / total
        return self._from_entropy(entropy, c.n_vocab)

    def temperature_for(self, logits: np.ndarray, max_logit: float) -> float:
        """The dynamic temperature for candidates with these logits."""
        shifted = logits - np.float32(max_logit)
        weights = np.exp(shifted)
        total = float(weights.sum(dtype=np.float64))
        live = weights > 0  # 0 * ln 0 = 0: banned and underflowed tokens carry no entropy
        if live.all():
            weighted = dot(weights, shifted)
        else:
            weighted = dot(weights[live], shifted[live])
        entropy = math.log(total) - weighted / total
        return self._from_entropy(entropy, logits.shape[0])

    def _from_entropy(self, entropy: float, n: int) -> float:
        t_min = max(0.0, self.temperature - self.delta)
        t_max = self.temperature + self.delta
        normalized = max(0.0, entropy) / math.log(n)
        return t_min + (t_max - t_min) * normalized**self.exponent


def keep_most_likely(c: Candidates) -> None:
    """Narrow ``c`` to its most likely token (ties: lowest id)."""
    if c.is_dense and c.cut is None:
        token = int(np.argmax(c.logits))
        value = c.logits[token]
        if not (value < np.inf) or value == -np.inf:
            raise locate_invalid(c.logits, None)
        if c.divisor != 1.0:
            value = np.float32(value) / np.float32(c.divisor)
        c.keep_sparse(np.array([token]), np.array([value], dtype=np.float32), ORDER_BY_ID)
        return
    c.materialize()
    m = c.max_logit()
    at_max = np.flatnonzero(c.logits == np.float32(m))
    position = at_max[np.argmin(c.ids[at_max])]
    c.keep(np.array([position]), ORDER_BY_ID)
