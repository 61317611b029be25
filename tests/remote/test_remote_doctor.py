"""``gemma-lsp doctor`` with the remote backend: a real OpenAI-compatible server answers, a closed
port does not, and the doctor says which."""

from __future__ import annotations

import subprocess
import sys

from gemma_lsp.memory.redis_server import free_port


def doctor(tmp_path, urls: list[str]) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    listed = ", ".join(f'"{u}"' for u in urls)
    config.write_text(f'[model]\nbackend = "openai"\nbase_urls = [{listed}]\n')
    return subprocess.run([sys.executable, "-m", "gemma_lsp", "doctor", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)


def model_line(out: str) -> str:
    return next(l for l in out.splitlines() if l.split()[1:2] == ["model"])


def test_doctor_reports_which_servers_answer(tmp_path, openai_server):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    up = doctor(tmp_path, [openai_server.url])
    assert up.returncode == 0, up.stdout
    assert model_line(up.stdout).startswith("ok") and "1 server(s) answer" in model_line(up.stdout)
    half = doctor(tmp_path, [openai_server.url, closed])
    assert model_line(half.stdout).startswith("warn") and closed in model_line(half.stdout)
    down = doctor(tmp_path, [closed])
    assert down.returncode == 1 and model_line(down.stdout).startswith("fail") and closed in model_line(down.stdout)
