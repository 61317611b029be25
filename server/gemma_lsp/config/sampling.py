"""Sampler chains and named presets, as pydantic models.

A chain is an ordered list of sampler specs, each tagged by ``type``. Filters (penalties, logit
bias, top-k, top-p, min-p, typical, temperatures) run in the order given; the last entry may be a
selector (``greedy``, ``distribution`` or ``mirostat_v2``); when it is not, ``distribution`` is
implied. ``gemma_lsp.sampling.build_sampler`` turns a chain into a sampler; the maths of each
sampler is in ``docs/sampling.md``.

An invalid parameter fails validation with a location that names the preset, the position, the
sampler type and the field, e.g. ``presets.completion.1.min_p.p``.

This module imports nothing of ours (config/ stays a leaf package).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .strict import Float, Int


class UnknownPreset(LookupError):
    """A sampling preset was asked for by a name that is not configured."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown sampling preset {name!r} (known: {', '.join(self.known)})")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_VOCAB = 10_000_000  # more tokens than any vocabulary has: the bound of token counts and ids
_Probability = Annotated[Float, Field(ge=0.0, le=1.0)]
_MinKeep = Annotated[Int, Field(ge=1, le=_VOCAB, description="Never keep fewer than this many tokens.")]
_BIAS = 100.0
_Bias = Annotated[
    Float,
    Field(le=_BIAS, json_schema_extra={"minimum": -_BIAS}, description="-100 to 100 added to the logit, or -inf (\"-inf\" in JSON) to ban the token."),
    BeforeValidator(lambda v: -math.inf if isinstance(v, str) and v.strip().lower() == "-inf" else v),  # JSON has no -inf
]


class GreedySpec(_Spec):
    """Select the most likely token (ties: lowest token id)."""

    type: Literal["greedy"] = "greedy"


class DistributionSpec(_Spec):
    """Select a token at random from the remaining candidates' softmax (seeded per request)."""

    type: Literal["distribution"] = "distribution"


class TemperatureSpec(_Spec):
    """Divide logits by ``temperature``; 0 keeps only the most likely token."""

    type: Literal["temperature"] = "temperature"
    temperature: Float = Field(ge=0.0, le=100.0)


class DynamicTemperatureSpec(_Spec):
    """Entropy-scaled temperature in [temperature - delta, temperature + delta] (llama.cpp temp_ext)."""

    type: Literal["dynamic_temperature"] = "dynamic_temperature"
    temperature: Float = Field(ge=0.0, le=100.0)
    delta: Float = Field(default=0.0, ge=0.0, le=100.0)
    exponent: Float = Field(default=1.0, gt=0.0, le=100.0)


class TopKSpec(_Spec):
    """Keep the ``k`` most likely tokens."""

    type: Literal["top_k"] = "top_k"
    k: Int = Field(ge=1, le=_VOCAB)


class TopPSpec(_Spec):
    """Keep the smallest most-likely set whose probability reaches ``p`` (nucleus sampling)."""

    type: Literal["top_p"] = "top_p"
    p: Float = Field(gt=0.0, le=1.0)
    min_keep: _MinKeep = 1


class MinPSpec(_Spec):
    """Keep tokens whose probability is at least ``p`` times the top token's."""

    type: Literal["min_p"] = "min_p"
    p: _Probability
    min_keep: _MinKeep = 1


class TypicalSpec(_Spec):
    """Locally typical sampling: keep tokens whose surprise is closest to the entropy, up to mass ``p``."""

    type: Literal["typical"] = "typical"
    p: Float = Field(gt=0.0, le=1.0)
    min_keep: _MinKeep = 1


class MirostatV2Spec(_Spec):
    """Mirostat 2.0: steer the surprise of selected tokens towards ``tau`` bits at learning rate ``eta``."""

    type: Literal["mirostat_v2"] = "mirostat_v2"
    tau: Float = Field(default=5.0, gt=0.0, le=100.0)
    eta: Float = Field(default=0.1, gt=0.0, le=1.0)


class PenaltiesSpec(_Spec):
    """Repetition (CTRL-style), frequency and presence penalties over the last ``last_n`` tokens."""

    type: Literal["penalties"] = "penalties"
    last_n: Int = Field(default=64, ge=1, le=1_000_000)
    repeat: Float = Field(default=1.0, gt=0.0, le=100.0)
    frequency: Float = Field(default=0.0, ge=-100.0, le=100.0)
    presence: Float = Field(default=0.0, ge=-100.0, le=100.0)


class LogitBiasSpec(_Spec):
    """Add a fixed bias to chosen tokens' logits; ``-inf`` bans a token."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=True)

    type: Literal["logit_bias"] = "logit_bias"
    bias: dict[Annotated[int, Field(ge=0, le=_VOCAB)], _Bias] = Field(min_length=1)

    @field_validator("bias")
    @classmethod
    def _finite_or_ban(cls, bias: dict[int, float]) -> dict[int, float]:
        for token, value in bias.items():
            if math.isnan(value) or not (-_BIAS <= value <= _BIAS or value == -math.inf):
                raise ValueError(f"bias for token {token} must be from -100 to 100, or -inf (a ban), got {value}")
        return bias


SamplerSpec = Annotated[
    Union[
        GreedySpec,
        DistributionSpec,
        TemperatureSpec,
        DynamicTemperatureSpec,
        TopKSpec,
        TopPSpec,
        MinPSpec,
        TypicalSpec,
        MirostatV2Spec,
        PenaltiesSpec,
        LogitBiasSpec,
    ],
    Field(discriminator="type"),
]

SELECTOR_TYPES = frozenset({"greedy", "distribution", "mirostat_v2"})


def check_chain(specs: list[SamplerSpec]) -> list[SamplerSpec]:
    """A chain is non-empty and has at most one selector, in last position."""
    if not specs:
        raise ValueError("a sampler chain needs at least one sampler")
    for position, spec in enumerate(specs[:-1]):
        if spec.type in SELECTOR_TYPES:
            raise ValueError(
                f"sampler {position} ({spec.type}) selects the token, so it must be the last in the chain"
            )
    return specs


SamplerChainSpec = Annotated[list[SamplerSpec], Field(min_length=1)]


def default_presets() -> dict[str, list[SamplerSpec]]:
    """The presets every configuration has; user presets with the same name replace them."""
    return {
        "greedy": [GreedySpec()],
        # Code completion: nearly deterministic, but never stuck on a tie.
        "completion": [TopKSpec(k=40), MinPSpec(p=0.05), TemperatureSpec(temperature=0.2), DistributionSpec()],
        "balanced": [TopPSpec(p=0.95), MinPSpec(p=0.05), TemperatureSpec(temperature=0.8), DistributionSpec()],
        # Gemma's published chat settings: temperature 1.0, top-k 64, top-p 0.95.
        "chat": [TopKSpec(k=64), TopPSpec(p=0.95), TemperatureSpec(temperature=1.0), DistributionSpec()],
        "creative": [
            PenaltiesSpec(last_n=64, repeat=1.1),
            MinPSpec(p=0.05),
            DynamicTemperatureSpec(temperature=1.0, delta=0.5, exponent=1.0),
            DistributionSpec(),
        ],
        "dynatemp": [
            MinPSpec(p=0.05),
            DynamicTemperatureSpec(temperature=0.8, delta=0.5, exponent=1.0),
            DistributionSpec(),
        ],
        "mirostat": [TemperatureSpec(temperature=0.8), MirostatV2Spec(tau=5.0, eta=0.1)],
        "typical": [TypicalSpec(p=0.95), TemperatureSpec(temperature=0.8), DistributionSpec()],
        "penalties": [
            PenaltiesSpec(last_n=64, repeat=1.1),
            MinPSpec(p=0.05),
            TemperatureSpec(temperature=0.8),
            DistributionSpec(),
        ],
    }


DEFAULT_FEATURE_PRESETS = {"completion": "completion", "chat": "chat"}


class SamplingSettings(BaseModel):
    """Named sampler chains and which one each feature uses.

    ``presets`` is merged over :func:`default_presets`, so configuring one preset keeps the others.
    ``features`` maps a feature name (``completion``, ``chat``, ...) to a preset name; a request may
    name a preset of its own, which wins.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    presets: dict[str, SamplerChainSpec] = Field(
        default_factory=default_presets,
        description="Named sampler chains: each a list of steps such as {type = \"min_p\", p = 0.05}, applied in order.",
    )
    default_preset: str = Field(default="completion", description="Preset for features not listed in `features`.")
    features: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_FEATURE_PRESETS),
        description="Which preset each feature uses (completion, chat, actions).",
    )

    @field_validator("presets", mode="before")
    @classmethod
    def _merge_over_defaults(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**default_presets(), **value}
        return value

    @field_validator("presets")
    @classmethod
    def _chains_are_well_formed(cls, presets: dict[str, list[SamplerSpec]]) -> dict[str, list[SamplerSpec]]:
        for name, specs in presets.items():
            try:
                check_chain(specs)
            except ValueError as exc:
                raise ValueError(f"preset {name!r}: {exc}") from None
        return presets

    @model_validator(mode="after")
    def _referenced_presets_exist(self) -> "SamplingSettings":
        if self.default_preset not in self.presets:
            raise ValueError(f"default_preset: {UnknownPreset(self.default_preset, list(self.presets))}")
        for feature, name in self.features.items():
            if name not in self.presets:
                raise ValueError(f"features.{feature}: {UnknownPreset(name, list(self.presets))}")
        return self

    def preset(self, name: str) -> list[SamplerSpec]:
        """The chain of preset ``name``; :class:`UnknownPreset` names it if it is not configured."""
        try:
            return self.presets[name]
        except KeyError:
            raise UnknownPreset(name, list(self.presets)) from None

    def preset_name_for(self, feature: str, requested: str | None = None) -> str:
        """The preset a request of ``feature`` uses: the one it asked for, else the feature's, else the default."""
        name = requested or self.features.get(feature) or self.default_preset
        if name not in self.presets:
            raise UnknownPreset(name, list(self.presets))
        return name

    def preset_for(self, feature: str, requested: str | None = None) -> list[SamplerSpec]:
        """The chain a request of ``feature`` uses (see :meth:`preset_name_for`)."""
        return self.presets[self.preset_name_for(feature, requested)]
