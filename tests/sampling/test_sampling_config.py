"""Sampler chain configuration: validated specs, named presets, per-feature and per-request choice."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from gemma_lsp.config.sampling import (
    MinPSpec,
    SamplingSettings,
    TopKSpec,
    UnknownPreset,
    default_presets,
)
from gemma_lsp.sampling import (
    Greedy,
    GreedyChoice,
    InvalidSamplerSpec,
    MinP,
    RandomChoice,
    Temperature,
    TopByLogit,
    TopK,
    build_sampler,
)


def test_every_default_preset_builds_and_samples():
    settings = SamplingSettings()
    assert {"greedy", "completion", "balanced", "chat", "creative"} <= set(settings.presets)
    logits = np.random.default_rng(0).normal(size=2000).astype(np.float32)
    for name in settings.presets:
        sampler = build_sampler(settings.preset(name), seed=1)
        sampler.reset()
        assert 0 <= sampler.sample(logits) < 2000


def test_an_invalid_parameter_names_the_preset_the_sampler_and_the_field():
    with pytest.raises(ValidationError) as info:
        SamplingSettings(presets={"mine": [{"type": "top_k", "k": 40}, {"type": "min_p", "p": 1.5}]})
    error = info.value.errors()[0]
    assert error["loc"] == ("presets", "mine", 1, "min_p", "p")
    assert "presets.mine.1.min_p.p" in str(info.value)


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"type": "top_k", "k": 0}, "k"),
        ({"type": "top_p", "p": 0.0}, "p"),
        ({"type": "top_p", "p": 0.9, "min_keep": 0}, "min_keep"),
        ({"type": "typical", "p": 1.2}, "p"),
        ({"type": "temperature", "temperature": -1}, "temperature"),
        ({"type": "temperature", "temperature": float("nan")}, "temperature"),
        ({"type": "dynamic_temperature", "temperature": 0.8, "delta": -0.1}, "delta"),
        ({"type": "dynamic_temperature", "temperature": 0.8, "exponent": 0}, "exponent"),
        ({"type": "mirostat_v2", "tau": 0}, "tau"),
        ({"type": "mirostat_v2", "eta": 2}, "eta"),
        ({"type": "penalties", "repeat": 0}, "repeat"),
        ({"type": "penalties", "last_n": 0}, "last_n"),
        ({"type": "logit_bias", "bias": {"5": float("nan")}}, "bias"),
        ({"type": "top_k", "k": 5, "p": 0.3}, "p"),  # a field the sampler does not have
    ],
)
def test_each_bad_parameter_is_reported_by_sampler_and_field(spec, field):
    with pytest.raises(ValidationError) as info:
        SamplingSettings(presets={"x": [spec]})
    loc = info.value.errors()[0]["loc"]
    assert loc[:4] == ("presets", "x", 0, spec["type"])
    assert loc[4] == field


def test_an_unknown_sampler_type_is_rejected():
    with pytest.raises(ValidationError, match="top_z"):
        SamplingSettings(presets={"x": [{"type": "top_z", "k": 3}]})


def test_a_selector_must_come_last():
    with pytest.raises(ValidationError, match="preset 'x': sampler 0 \\(greedy\\) selects the token"):
        SamplingSettings(presets={"x": [{"type": "greedy"}, {"type": "top_k", "k": 3}]})


def test_logit_bias_allows_a_ban():
    settings = SamplingSettings(presets={"x": [{"type": "logit_bias", "bias": {"7": "-inf"}}]})
    assert settings.preset("x")[0].bias == {7: float("-inf")}


def test_user_presets_are_merged_over_the_defaults():
    settings = SamplingSettings(presets={"completion": [{"type": "greedy"}], "mine": [{"type": "top_k", "k": 3}]})
    assert settings.preset("completion")[0].type == "greedy"
    assert settings.preset("mine") == [TopKSpec(k=3)]
    assert settings.preset("balanced") == default_presets()["balanced"]


def test_an_unknown_preset_is_a_clear_error_naming_it():
    settings = SamplingSettings()
    with pytest.raises(UnknownPreset, match="unknown sampling preset 'nope' \\(known: balanced, chat"):
        settings.preset("nope")
    with pytest.raises(UnknownPreset, match="'nope'"):
        settings.preset_for("completion", requested="nope")


def test_presets_are_chosen_per_request_then_per_feature_then_by_default():
    settings = SamplingSettings(features={"completion": "completion", "chat": "creative"}, default_preset="balanced")
    assert settings.preset_name_for("chat") == "creative"
    assert settings.preset_name_for("completion") == "completion"
    assert settings.preset_name_for("explain") == "balanced"
    assert settings.preset_name_for("chat", requested="greedy") == "greedy"


def test_features_and_the_default_must_name_existing_presets():
    with pytest.raises(ValidationError, match="features.chat: unknown sampling preset 'wild'"):
        SamplingSettings(features={"chat": "wild"})
    with pytest.raises(ValidationError, match="default_preset"):
        SamplingSettings(default_preset="wild")


def test_settings_round_trip_through_json():
    settings = SamplingSettings(presets={"mine": [{"type": "penalties", "last_n": 32, "repeat": 1.2}]})
    again = SamplingSettings.model_validate_json(settings.model_dump_json())
    assert again == settings


def test_build_sampler_accepts_dicts_and_models_and_appends_a_distribution():
    chain = build_sampler([{"type": "top_k", "k": 40}, MinPSpec(p=0.05)], seed=3)
    assert [type(s) for s in chain.stages] == [TopK, MinP, RandomChoice]
    assert isinstance(chain._plan[0], TopByLogit)  # consecutive top-by-logit filters run fused
    assert isinstance(build_sampler([{"type": "greedy"}]).stages[-1], GreedyChoice)


@pytest.mark.parametrize(
    "specs,message",
    [
        ([{"type": "top_z"}], "sampler 0: unknown type 'top_z'"),
        ([{"type": "top_k", "k": 0}], r"sampler 0 \(top_k\): top_k.k must be at least 1"),
        ([{"type": "top_k", "k": 4}, {"type": "min_p", "p": 3}], r"sampler 1 \(min_p\): min_p.p must be in \[0, 1\]"),
        ([{"type": "top_k", "kk": 4}], r"sampler 0 \(top_k\): unknown parameter\(s\) kk"),
        ([{"k": 4}], "sampler 0: missing its 'type'"),
        ([{"type": "greedy"}, {"type": "top_k", "k": 2}], r"stage 0 \(greedy\) selects the token"),
        ([], "at least one sampler"),
    ],
)
def test_build_sampler_errors_name_the_sampler_and_the_problem(specs, message):
    with pytest.raises(InvalidSamplerSpec, match=message):
        build_sampler(specs)


def test_the_engine_protocol_names_still_work():
    logits = np.array([0.1, 3.0, -1.0], dtype=np.float32)
    assert Greedy().sample(logits) == 1
    sampler = Temperature(0.7, seed=5)
    first = [sampler.sample(logits) for _ in range(10)]
    sampler.reset()
    assert [sampler.sample(logits) for _ in range(10)] == first
    sampler.accept(1)
