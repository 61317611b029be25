"""The config file's schema version: an older file is migrated (original kept), a newer one refused."""

from __future__ import annotations

import tomllib

import pytest

from gemma_lsp.config import CONFIG_VERSION, load_file, load_settings, save_file
from gemma_lsp.config.versions import V0_TEMPERATURE_PRESET
from gemma_lsp.errors import ConfigError

V0_GREEDY = b"""# my settings, written before sampler presets
[model]
n_ctx = 4096

[completion]
max_tokens = 32  # short ones
temperature = 0.0
"""


def test_a_v0_file_is_migrated_once_with_a_notice_and_the_original_kept(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(V0_GREEDY)
    notices: list[str] = []
    settings = load_settings(path, notify=notices.append)
    assert settings.completion.preset == "greedy" and settings.completion.max_tokens == 32
    assert settings.model.n_ctx == 4096
    backup = tmp_path / "config.toml.v0.bak"
    assert backup.read_bytes() == V0_GREEDY  # the original, byte for byte
    assert notices == [
        f"Migrated config file {path} from version 0 to {CONFIG_VERSION} (completion.temperature = 0.0 became "
        f'completion.preset = "greedy"); the original is kept as {backup}.'
    ]
    written = tomllib.loads(path.read_text())
    assert written["version"] == CONFIG_VERSION and "temperature" not in written["completion"]
    assert written["completion"]["preset"] == "greedy"
    # Loaded again: already current, nothing to say, nothing rewritten.
    before = path.read_bytes()
    assert load_settings(path, notify=notices.append) == settings
    assert len(notices) == 1 and path.read_bytes() == before


def test_a_v0_temperature_above_zero_becomes_a_preset_of_that_temperature(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[completion]\ntemperature = 0.7\n")
    settings = load_settings(path, notify=lambda message: None)
    assert settings.completion.preset == V0_TEMPERATURE_PRESET
    chain = settings.sampling.presets[V0_TEMPERATURE_PRESET]
    assert [spec.type for spec in chain] == ["temperature", "distribution"] and chain[0].temperature == 0.7


def test_a_v0_file_with_nothing_to_change_is_only_stamped_and_keeps_its_comments(tmp_path):
    path = tmp_path / "config.toml"
    original = "# tuned for my laptop\n[completion]\nmax_tokens = 20  # enough\n"
    path.write_text(original)
    notices: list[str] = []
    assert load_file(path, notices.append) == {"completion": {"max_tokens": 20}}
    assert path.read_text() == f"version = {CONFIG_VERSION}\n" + original
    assert (tmp_path / "config.toml.v0.bak").read_text() == original
    assert len(notices) == 1 and "the version stamped, nothing else changed" in notices[0]


def test_a_file_of_a_newer_version_is_refused_naming_the_file_and_both_versions(tmp_path):
    path = tmp_path / "config.toml"
    text = f"version = {CONFIG_VERSION + 1}\n[completion]\nmax_tokens = 20\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_file(path)
    assert str(err.value) == (
        f"Config file {path} is version {CONFIG_VERSION + 1}, newer than this gemma-lsp reads (version "
        f"{CONFIG_VERSION}): upgrade gemma-lsp, or use a file written for version {CONFIG_VERSION}."
    )
    assert path.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


@pytest.mark.parametrize("version", ['"one"', "-1", "true", "1.0"])
def test_a_version_that_is_not_a_whole_number_is_refused(tmp_path, version):
    path = tmp_path / "config.toml"
    path.write_text(f"version = {version}\n")
    with pytest.raises(ConfigError, match=rf"Invalid config file {path}: version must be a whole number"):
        load_file(path)


def test_an_invalid_v0_file_is_not_rewritten(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[completion]\ntemperature = 0.0\nmax_tokns = 3\n")
    notices: list[str] = []
    with pytest.raises(ConfigError, match=r"completion.max_tokns: unknown setting"):
        load_settings(path, notify=notices.append)
    assert notices == [] and sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_a_file_that_is_not_utf8_is_named_with_the_encoding_problem(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes('[model]\npath = "/models/café.gguf"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_file(path)
    assert str(err.value) == (
        f"Config file {path} is not UTF-8 text (byte 0xe9 on line 2 is not UTF-8): save it as UTF-8."
    )


def test_saved_files_carry_the_current_version(tmp_path):
    path = tmp_path / "config.toml"
    save_file(path, {"completion": {"max_tokens": 9}})
    assert path.read_text().startswith(f"version = {CONFIG_VERSION}\n")
    assert load_file(path) == {"completion": {"max_tokens": 9}}
