"""End to end over stdio: ``gemma-lsp serve`` with ``backend = "openai"`` on a real inference
server (llama-cpp-python's), as an editor drives it: completions and chat through the server,
the backend and its endpoints in ``gemma/stats``, the server killed (empty answers at once, one
message) and started again (answers again, by itself), and an API key that reaches no log."""

from __future__ import annotations

import asyncio
import time

from gemma_lsp.lsp.client import EditorSession

TEXT = "def area(r):\n    return r * r\n\n\nx = "
URI = "file:///work/team.py"


async def wait_for_stats(session: EditorSession, condition, within_s: float = 30.0) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        stats = await session.stats()
        if condition(stats):
            return stats
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.1)


async def test_an_editor_on_a_shared_server_survives_the_server_dying(start_server, vocab, tmp_path, monkeypatch):
    key = "team-secret-4242"
    server = start_server(api_key=key)
    monkeypatch.setenv("GEMMA_TEAM_KEY", key)  # the server process inherits the environment
    total = vocab.tokenize("total")[0]
    log_file = tmp_path / "server.log"
    session = EditorSession(
        settings={
            "model": {"backend": "openai", "base_url": server.url, "api_key_env": "GEMMA_TEAM_KEY",
                      "health_interval_s": 0.2, "connect_timeout_s": 1.0, "n_ctx": 4096},
            "sampling": {"presets": {"forced": [{"type": "logit_bias", "bias": {str(total): 100.0}}, {"type": "greedy"}]},
                         "features": {"completion": "forced", "chat": "forced"}},
            "completion": {"max_tokens": 2, "max_lines": 1},
            "chat": {"max_tokens": 3},
        },
        server_args=["--log-file", str(log_file), "-vv"],
    )
    await session.start()
    try:
        session.open(URI, TEXT)
        stats = await session.wait_until_loaded(60)
        assert stats["loaded"] and stats["backend"] == "openai" and stats["load_error"] is None
        remote = stats["remote"]
        assert remote["endpoints"][0]["url"] == server.url and remote["endpoints"][0]["state"] == "up"
        assert remote["server"] == "llama-cpp-python" and remote["prompts"] == "fim"

        line, col = 4, 4
        items = (await session.inline(URI, line, col)).items
        assert [item.insert_text.replace(" ", "") for item in items] == ["totaltotal"]
        last = (await session.stats())["completion"]["last"]
        assert last["source"] == "engine" and last["prompt_mode"] == "fim-spm"

        result, pieces = await session.chat("Say total.")
        assert result["text"].replace(" ", "") == "totaltotaltotal" and pieces

        server.kill()
        session.insert(URI, line, col, "y")
        col += 1
        started = time.perf_counter()
        answer = await session.inline(URI, line, col)
        assert not answer.items
        assert time.perf_counter() - started < 2.0
        session.insert(URI, line, col, "z")
        col += 1
        started = time.perf_counter()
        assert not (await session.inline(URI, line, col)).items
        assert time.perf_counter() - started < 0.5  # at once: the server is known to be down
        stats = await session.stats()
        assert stats["remote"]["endpoints"][0]["state"] == "down"
        down = [m for m in session.messages if "inference server" in m]
        assert down == [  # once, though two completions were answered empty (messages: see below)
            f"gemma-lsp: No inference server answers ({server.url} refused the connection); "
            "completions resume by themselves when it is back."
        ], session.messages

        server.start()
        await wait_for_stats(session, lambda s: s["remote"]["endpoints"][0]["state"] == "up")
        session.insert(URI, line, col, " ")
        col += 1
        items = (await session.inline(URI, line, col)).items
        assert [item.insert_text.replace(" ", "") for item in items] == ["totaltotal"]
    finally:
        await session.stop()
    assert key not in log_file.read_text() and "openai" in log_file.read_text()


def test_the_demo_runs_on_a_shared_server_and_shows_its_status(openai_server):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "demo", "--base-url", openai_server.url],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"Model: the one served by {openai_server.url} (the remote backend)" in proc.stdout
    assert f"  from {openai_server.url} (llama-cpp-python, model " in proc.stdout
    assert f"  servers: {openai_server.url} up, " in proc.stdout and "ms to the first byte" in proc.stdout
    assert "(backend openai)" in proc.stdout
