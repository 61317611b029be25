"""`gemma-lsp config show | validate | set` and `serve --config`, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from gemma_lsp.config import CONFIG_VERSION


def gemma_lsp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_lsp", *args], capture_output=True, text=True, timeout=60)


def test_set_writes_a_checked_value_that_validate_and_show_then_see(tmp_path):
    path = tmp_path / "config.toml"
    done = gemma_lsp("config", "set", "--config", str(path), "completion.max_tokens", "32")
    assert done.returncode == 0 and done.stdout == f"completion.max_tokens = 32 in {path}\n"
    done = gemma_lsp("config", "set", "--config", str(path), "model.path", "/models/my model.gguf")
    assert done.returncode == 0, done.stderr  # not TOML: taken as text
    assert tomllib.loads(path.read_text()) == {
        "version": CONFIG_VERSION, "completion": {"max_tokens": 32}, "model": {"path": "/models/my model.gguf"},
    }  # fmt: skip
    assert gemma_lsp("config", "validate", str(path)).stdout == f"{path} is valid\n"
    shown = gemma_lsp("config", "show", "--config", str(path))
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"# settings from {path}, defaults for every key it does not set\n")
    effective = tomllib.loads(shown.stdout)
    assert effective["completion"]["max_tokens"] == 32 and effective["completion"]["time_limit_ms"] == 2000.0


def test_set_refuses_a_bad_key_or_value_in_one_sentence_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f"version = {CONFIG_VERSION}\n# mine\n[completion]\nmax_tokens = 20\n")
    before = path.read_bytes()
    for key, value, said in (
        ("completion.time_limit_ms", "1e308", "Invalid setting completion.time_limit_ms: 1e+308 is out of range "
         "(allowed: from 0 to 600000)."),
        ("completion.max_tokens", "true", "Invalid setting completion.max_tokens: must be a whole number (got true)."),
        ("completion.max_tokns", "3", "Invalid setting completion.max_tokns: unknown setting."),
        ("completion.max_tokens.x", "3", f"Cannot set completion.max_tokens.x: completion.max_tokens is a value in "
         f"{path}, not a table."),
        ("version", "2", "version is the file's schema version, which gemma-lsp writes itself."),
    ):  # fmt: skip
        done = gemma_lsp("config", "set", "--config", str(path), key, value)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"gemma-lsp: {said}\n")
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temp file left behind


def test_validate_names_every_problem_by_its_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f"version = {CONFIG_VERSION}\n[model]\nn_ctx = 3\n[completion]\nmax_tokens = true\n")
    done = gemma_lsp("config", "validate", str(path))
    assert done.returncode == 1
    assert sorted(done.stdout.splitlines()) == [
        "Invalid setting completion.max_tokens: must be a whole number (got true).",
        "Invalid setting model.n_ctx: 3 is out of range (allowed: from 256 to 1048576).",
    ]
    missing = gemma_lsp("config", "validate", str(tmp_path / "nope.toml"))
    assert (missing.returncode, missing.stdout) == (1, f"Config file {tmp_path / 'nope.toml'} does not exist.\n")


def test_show_and_validate_read_an_old_file_as_migrated_and_set_migrates_it(tmp_path):
    path = tmp_path / "config.toml"
    original = "[completion]\ntemperature = 0.0\n"
    path.write_text(original)
    shown = gemma_lsp("config", "show", "--config", str(path))
    assert shown.returncode == 0 and tomllib.loads(shown.stdout)["completion"]["preset"] == "greedy"
    said = (f"gemma-lsp: Config file {path} is version 0, read as version {CONFIG_VERSION} (completion.temperature = "
            f'0.0 became completion.preset = "greedy"); the server or `gemma-lsp config set` migrates it.\n')  # fmt: skip
    assert shown.stderr == said
    checked = gemma_lsp("config", "validate", str(path))
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, f"{path} is valid\n", said)
    assert path.read_text() == original and sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]

    done = gemma_lsp("config", "set", "--config", str(path), "completion.max_tokens", "16")
    assert done.returncode == 0 and done.stderr.startswith(f"gemma-lsp: Migrated config file {path} from version 0")
    assert (tmp_path / "config.toml.v0.bak").read_text() == original
    assert tomllib.loads(path.read_text()) == {
        "version": CONFIG_VERSION, "completion": {"preset": "greedy", "max_tokens": 16},
    }  # fmt: skip


def test_serve_with_a_config_file_that_does_not_exist_stops_at_once_naming_it(tmp_path):
    missing = tmp_path / "missing.toml"
    done = gemma_lsp("serve", "--config", str(missing))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"gemma-lsp: --config {missing} does not exist\n")


def test_a_bad_value_set_in_an_old_file_leaves_it_unmigrated_and_untouched(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[completion]\ntemperature = 0.0\n")
    done = gemma_lsp("config", "set", "--config", str(path), "completion.max_tokens", "0")
    assert done.returncode == 1 and done.stderr == (
        "gemma-lsp: Invalid setting completion.max_tokens: 0 is out of range (allowed: from 1 to 32768).\n"
    )
    assert path.read_text() == "[completion]\ntemperature = 0.0\n" and len(list(tmp_path.iterdir())) == 1


def test_set_that_makes_an_old_file_valid_keeps_its_original_too(tmp_path):
    path = tmp_path / "config.toml"
    original = "[completion]\ntemperature = 0.0\nmax_tokens = 0\n"
    path.write_text(original)
    done = gemma_lsp("config", "set", "--config", str(path), "completion.max_tokens", "8")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "config.toml.v0.bak").read_text() == original
    assert tomllib.loads(path.read_text()) == {
        "version": CONFIG_VERSION, "completion": {"preset": "greedy", "max_tokens": 8},
    }  # fmt: skip
