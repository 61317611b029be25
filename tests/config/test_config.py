"""Settings: validation that names the key, layered merge, atomic TOML writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib

import pytest

from gemma_lsp.config import LlamaCppModelSettings, Settings, apply_layer, load_file, load_settings, save_file
from gemma_lsp.errors import ConfigError


@pytest.mark.parametrize(
    "layer, key, reason",
    [
        ({"model": {"n_ctx": 10}}, "model.n_ctx", "10 is out of range (allowed: from 256 to 1048576)"),
        ({"model": {"n_threads": "many"}}, "model.n_threads", "must be a whole number (got 'many')"),
        ({"completion": {"max_tokens": 0}}, "completion.max_tokens", "0 is out of range (allowed: from 1 to 32768)"),
        ({"completion": {"time_limit_ms": -1}}, "completion.time_limit_ms", "-1 is out of range (allowed: from 0 to 600000)"),
        ({"completion": {"time_limit_ms": 1e308}}, "completion.time_limit_ms", "1e+308 is out of range (allowed: from 0 to 600000)"),
        ({"completion": {"max_tokens": True}}, "completion.max_tokens", "must be a whole number (got true)"),
        ({"completion": {"token_healing": 1}}, "completion.token_healing", "must be true or false (got 1)"),
        ({"memory": {"ttl": {"working": 0}}}, "memory.ttl.working", "0 is out of range (allowed: more than 0, at most 3153600000)"),
        ({"sampling": {"presets": {"mine": [{"type": "min_p", "p": 2}]}}}, "sampling.presets.mine.0.min_p.p", "2 is out of range (allowed: from 0 to 1)"),
        ({"sampling": {"presets": {"mine": [{"type": "top_k", "k": True}]}}}, "sampling.presets.mine.0.top_k.k", "must be a whole number (got true)"),
        ({"completion": {"max_lnes": 3}}, "completion.max_lnes", "unknown setting"),
        ({"model": {"rope_scaling": "cubic"}}, "model.rope_scaling", "'none', 'linear' or 'yarn'"),
        ({"log": {"level": "loud"}}, "log.level", "'debug', 'info', 'warning' or 'error'"),
    ],
)
def test_an_invalid_value_is_rejected_with_its_key_named(layer, key, reason):
    before = Settings()
    with pytest.raises(ConfigError) as err:
        apply_layer(before, layer)
    message = str(err.value)
    assert message.startswith(f"Invalid setting {key}:") and reason in message
    assert before == Settings()  # the previous settings are untouched


def test_an_unknown_completion_preset_is_named():
    with pytest.raises(ConfigError, match=r"completion.preset: there is no sampler preset 'fast' \(known: balanced, "):
        apply_layer(Settings(), {"completion": {"preset": "fast"}})


def test_windows_that_do_not_fit_the_context_are_rejected():
    with pytest.raises(ConfigError, match=r"does not fit in model.n_ctx \(512\)"):
        apply_layer(Settings(), {"model": {"n_ctx": 512}, "completion": {"prefix_tokens": 1024}})


def test_layers_merge_key_by_key_later_ones_winning(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[model]\npath = "/models/a.gguf"\nn_ctx = 8192\n[completion]\nmax_tokens = 32\n')
    settings = load_settings(path, {"completion": {"max_lines": 2}})
    settings = apply_layer(settings, {"model": {"n_ctx": 4096}})
    assert str(settings.model.path) == "/models/a.gguf"
    assert settings.model.n_ctx == 4096
    assert (settings.completion.max_tokens, settings.completion.max_lines) == (32, 2)


def test_toml_round_trip(tmp_path):
    path = tmp_path / "nested" / "config.toml"
    settings = apply_layer(Settings(), {"model": {"path": "/m.gguf", "rope_scaling": "yarn"}, "completion": {"seed": 7}})
    save_file(path, settings)
    assert load_settings(path) == settings


def test_a_broken_toml_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[model\npath = 1")
    with pytest.raises(ConfigError, match=f"Invalid config file {path}"):
        load_file(path)


def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "config.toml"
    save_file(path, apply_layer(Settings(), {"completion": {"max_tokens": 11}}))
    old = path.read_text()
    # A real crash: the writing process dies (no cleanup, no exception handlers) just as the
    # new content has been written to disk but before it is renamed into place.
    script = textwrap.dedent(
        f"""
        import os
        from gemma_lsp.config import Settings, apply_layer, save_file
        os.fsync = lambda fd: os._exit(9)
        save_file({str(path)!r}, apply_layer(Settings(), {{"completion": {{"max_tokens": 22}}}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == 9
    assert path.read_text() == old
    assert load_settings(path).completion.max_tokens == 11


def test_the_readme_example_config_is_valid(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = readme.split("```toml")[1].split("```")[0]
    path = tmp_path / "config.toml"
    path.write_text(example)
    notices: list[str] = []
    settings = load_settings(path, notify=notices.append)
    assert settings.completion.preset == "completion" and "mine" in settings.sampling.presets
    assert notices == [] and path.read_text() == example  # written at the current version: nothing to migrate


def test_memory_ranking_weights_are_settings():
    settings = apply_layer(Settings(), {"memory": {"ranking": {"w_recency": 0.2, "tier_weights": {"episodic": 0.5}}}})
    assert settings.memory.ranking.w_recency == 0.2 and settings.memory.ranking.tier_weights.for_tier("episodic") == 0.5
    with pytest.raises(ConfigError, match=r"memory.ranking.w_importance: -1 is out of range \(allowed: from 0 to 1\)"):
        apply_layer(Settings(), {"memory": {"ranking": {"w_importance": -1}}})


def test_the_model_section_is_the_llama_cpp_backends_by_default():
    settings = apply_layer(Settings(), {"model": {"path": "/models/g.gguf"}})
    assert settings.model.backend == "llama.cpp" and isinstance(settings.model, LlamaCppModelSettings)
    assert settings.model.label == "g.gguf"
    assert apply_layer(settings, {"model": {"backend": "llama.cpp", "n_ctx": 4096}}).model.path is not None


def test_an_unknown_backend_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"model\.backend: there is no backend 'vllm' \(known: 'llama.cpp', 'openai'\)"):
        apply_layer(Settings(), {"model": {"backend": "vllm"}})


def test_a_key_of_the_backend_is_named_without_the_backend_tag():
    with pytest.raises(ConfigError, match=r"^Invalid setting model\.n_threads: "):
        apply_layer(Settings(), {"model": {"n_threads": 0}})
    with pytest.raises(ConfigError, match=r"^Invalid setting model\.base_url: unknown setting\.$"):
        apply_layer(Settings(), {"model": {"base_url": "http://gpu:8000/v1"}})
