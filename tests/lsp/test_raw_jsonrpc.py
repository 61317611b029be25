"""The real server over stdio, spoken to byte by byte: messages a typed client library would
never send, but real clients do."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading

import pytest


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(stream) -> dict:
    length = None
    while True:
        line = stream.readline()
        if not line:
            raise EOFError("the server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return json.loads(stream.read(length))


@pytest.fixture
def server(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemma_lsp", "serve", "--config", str(tmp_path / "none.toml")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )
    proc.messages = queue.Queue()

    def pump() -> None:
        try:
            while True:
                proc.messages.put(read_message(proc.stdout))
        except (EOFError, ValueError, OSError):
            pass

    threading.Thread(target=pump, daemon=True).start()
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def answer(proc, message_id) -> dict:
    """The response to ``message_id`` (requests and notifications from the server are skipped)."""
    while True:
        try:
            message = proc.messages.get(timeout=30)
        except queue.Empty:
            raise AssertionError(f"no answer to request {message_id} in 30 s") from None
        if message.get("id") == message_id and "method" not in message:
            return message


def test_a_request_without_params_is_answered(server):
    model = {"model": {"path": "/nonexistent/model.gguf"}}
    server.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                              "params": {"capabilities": {}, "initializationOptions": {"gemma": model}}}))
    server.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    server.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "gemma/stats"}))  # no "params" at all
    server.stdin.write(frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}))
    server.stdin.flush()
    assert "capabilities" in answer(server, 1)["result"]
    stats = answer(server, 2)
    assert "completion" in stats["result"], stats
    assert answer(server, 3).get("error") is None
