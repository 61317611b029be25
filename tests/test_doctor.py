"""``gemma-lsp doctor`` run as a user runs it: a line per check, exit 1 when one fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gemma_lsp.memory.redis_server import RedisServer, free_port


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_lsp", "doctor", *args], capture_output=True, text=True, timeout=120)


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def line(out: str, name: str) -> str:
    found = [l for l in out.splitlines() if l.split()[1:2] == [name]]
    assert len(found) >= 1, out
    return found[0]


def test_a_working_set_up_passes_every_check(tmp_path, tiny_model):
    cfg = config(tmp_path, f'[model]\npath = "{tiny_model}"\n[memory]\nsqlite_path = "{tmp_path / "m.sqlite3"}"\n')
    run = doctor("--config", cfg, "--workspace", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert line(run.stdout, "model").startswith("ok") and "gemma3" in line(run.stdout, "model")
    assert line(run.stdout, "llama.cpp").startswith("ok") and "SIMD" in line(run.stdout, "llama.cpp")
    for name in ("config", "threads", "memory", "prompts", "index"):
        assert line(run.stdout, name).startswith("ok"), run.stdout


def test_a_missing_model_fails_with_its_path_and_what_to_do(tmp_path):
    run = doctor("--config", config(tmp_path, ""), "--model", str(tmp_path / "nope.gguf"))
    assert run.returncode == 1
    bad = line(run.stdout, "model")
    assert bad.startswith("fail") and "nope.gguf" in bad and "model.path" in bad


def test_a_broken_template_is_named(tmp_path, tiny_model):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "broken.jinja").write_text("{% for x in %}\n")
    run = doctor("--config", config(tmp_path, f'[model]\npath = "{tiny_model}"\n[prompts]\ndirs = ["{prompts}"]\n'))
    assert run.returncode == 1
    bad = line(run.stdout, "prompts")
    assert bad.startswith("fail") and "broken" in bad


def test_redis_is_pinged_for_real(tmp_path, tiny_model):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make system-deps installs it)")
    port = free_port()
    closed = doctor("--config", config(tmp_path, f'[model]\npath = "{tiny_model}"\n[memory]\nurl = "redis://127.0.0.1:{port}/0"\n'))
    assert closed.returncode == 1
    assert line(closed.stdout, "memory").startswith("fail") and str(port) in line(closed.stdout, "memory")
    server = RedisServer(binary, port, tmp_path / "redis").start()
    try:
        up = doctor("--config", config(tmp_path, f'[model]\npath = "{tiny_model}"\n[memory]\nurl = "{server.url}"\n'))
    finally:
        server.stop()
    assert up.returncode == 0, up.stdout
    assert line(up.stdout, "memory").startswith("ok")


def test_a_config_file_named_but_missing_is_an_error(tmp_path):
    run = doctor("--config", str(tmp_path / "missing.toml"))
    assert run.returncode == 2 and "missing.toml" in run.stderr
