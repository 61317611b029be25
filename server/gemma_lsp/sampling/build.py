"""Build a sampler chain from a list of sampler specs (pydantic models from config, or dicts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Callable

from .chain import SamplerChain
from .errors import InvalidSamplerSpec
from .penalties import LogitBias, Penalties
from .selection import GreedyChoice, MirostatV2, RandomChoice
from .stage import Stage
from .temperature import DynamicTemperature, TemperatureScaling
from .truncation import MinP, TopK, TopP
from .typical import Typical

# spec type -> (constructor, parameter names it takes, whether it takes the request seed)
_BUILDERS: dict[str, tuple[Callable[..., Stage], tuple[str, ...], bool]] = {
    "greedy": (GreedyChoice, (), False),
    "distribution": (RandomChoice, (), True),
    "temperature": (TemperatureScaling, ("temperature",), False),
    "dynamic_temperature": (DynamicTemperature, ("temperature", "delta", "exponent"), False),
    "top_k": (TopK, ("k",), False),
    "top_p": (TopP, ("p", "min_keep"), False),
    "min_p": (MinP, ("p", "min_keep"), False),
    "typical": (Typical, ("p", "min_keep"), False),
    "mirostat_v2": (MirostatV2, ("tau", "eta"), True),
    "penalties": (Penalties, ("last_n", "repeat", "frequency", "presence"), False),
    "logit_bias": (LogitBias, ("bias",), False),
}


def build_sampler(specs: Iterable[Any], seed: int | None = None) -> SamplerChain:
    """A :class:`SamplerChain` from sampler specs, in order.

    A spec is a mapping or an object with a ``type`` attribute (``top_k``, ``min_p``, ...) and
    that sampler's parameters as attributes (``gemma_lsp.config.sampling`` models fit). If the
    last spec is not a selector (``greedy``, ``distribution``, ``mirostat_v2``), ``distribution``
    is appended. ``seed`` seeds the random selectors; the chain reseeds on every ``reset()``.

    Raises :class:`InvalidSamplerSpec` naming the position, the sampler type and the problem.
    """
    stages: list[Stage] = []
    for position, spec in enumerate(specs):
        kind, params = _read(spec, position)
        if kind not in _BUILDERS:
            known = ", ".join(sorted(_BUILDERS))
            raise InvalidSamplerSpec(f"sampler {position}: unknown type {kind!r} (known: {known})")
        make, names, seeded = _BUILDERS[kind]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise InvalidSamplerSpec(f"sampler {position} ({kind}): unknown parameter(s) {', '.join(unknown)}")
        kwargs = {name: params[name] for name in names if name in params and params[name] is not None}
        if seeded:
            kwargs["seed"] = seed
        try:
            stages.append(make(**kwargs))
        except (TypeError, ValueError) as exc:
            raise InvalidSamplerSpec(f"sampler {position} ({kind}): {exc}") from None
    if not stages:
        raise InvalidSamplerSpec("a sampler chain needs at least one sampler")
    if not stages[-1].selects:
        stages.append(RandomChoice(seed))
    try:
        return SamplerChain(stages)
    except ValueError as exc:
        raise InvalidSamplerSpec(str(exc)) from None


def _read(spec: Any, position: int) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, Mapping):
        params = dict(spec)
    elif hasattr(spec, "model_dump"):
        params = spec.model_dump()
    elif hasattr(spec, "__dict__"):
        params = {k: v for k, v in vars(spec).items() if not k.startswith("_")}
    else:
        raise InvalidSamplerSpec(f"sampler {position}: expected a mapping or an object with a type, got {spec!r}")
    kind = params.pop("type", None)
    if not isinstance(kind, str):
        raise InvalidSamplerSpec(f"sampler {position}: missing its 'type'")
    return kind, params
