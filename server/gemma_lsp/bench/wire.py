"""The real server over stdio, spoken to byte by byte: what the soak suite and the reliability
tests send is whatever they like, framing included (a typed client would refuse to send it).

``WireServer`` starts ``gemma-lsp serve``, writes raw bytes, and files every message the server
writes: answers by id (every one of them, so a second answer to the same id is seen), and the
server's own requests and notifications in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def frame(message: Any) -> bytes:
    """``message`` as JSON in a correct frame."""
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(msg_id: Any, method: str, params: Any = None) -> dict:
    message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: Any = None) -> dict:
    message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def _read_message(stream) -> dict | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length is None:
        raise ValueError("the server wrote a frame without Content-Length")
    return json.loads(stream.read(length))


class WireServer:
    """One ``gemma-lsp serve`` process and everything it wrote."""

    def __init__(self, args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 stderr_path: Path | None = None) -> None:
        self._stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gemma_lsp", "serve", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=cwd, env={**os.environ, **(env or {})},
        )
        self.answers: dict[Any, list[dict]] = {}
        self.order: list[Any] = []  # the ids of the answers, as they were written
        self.incoming: list[dict] = []  # the server's requests and notifications
        self.bad_output: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    # ----------------------------------------------------------------- output
    def _pump(self) -> None:
        while True:
            try:
                message = _read_message(self.proc.stdout)
            except (ValueError, OSError) as exc:
                self.bad_output.append(str(exc))
                message = None
            with self._changed:
                if message is None:
                    self.closed = True
                    self._changed.notify_all()
                    return
                if "method" in message:
                    self.incoming.append(message)
                    if "id" in message:  # answer the server's requests as an editor would
                        self._answer_server(message)
                else:
                    self.answers.setdefault(message.get("id"), []).append(message)
                    self.order.append(message.get("id"))
                self._changed.notify_all()

    closed = False

    def _answer_server(self, message: dict) -> None:
        result: Any = None
        if message["method"] == "workspace/configuration":
            result = [None for _ in message.get("params", {}).get("items", [])]
        elif message["method"] == "workspace/applyEdit":
            result = {"applied": True}
        try:
            self.send(frame({"jsonrpc": "2.0", "id": message["id"], "result": result}))
        except (OSError, ValueError):  # the test closed the server's input meanwhile
            pass

    def answer(self, msg_id: Any, timeout: float = 30.0) -> dict | None:
        """The first answer to ``msg_id``, or None when none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while msg_id not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return self.answers.get(msg_id, [None])[0]
                self._changed.wait(left)
            return self.answers[msg_id][0]

    def messages(self, method: str) -> list[dict]:
        with self._changed:
            return [m for m in self.incoming if m.get("method") == method]

    # ------------------------------------------------------------------ input
    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def call(self, msg_id: Any, method: str, params: Any = None, timeout: float = 30.0) -> dict | None:
        self.send(frame(request(msg_id, method, params)))
        return self.answer(msg_id, timeout)

    def notify(self, method: str, params: Any = None) -> None:
        self.send(frame(notification(method, params)))

    def initialize(self, settings: dict | None = None, root: Path | None = None, msg_id: Any = "init") -> dict:
        params: dict[str, Any] = {
            "processId": None,
            "capabilities": {"window": {"workDoneProgress": True}},
            "initializationOptions": {"gemma": settings or {}},
        }
        if root is not None:
            params["rootUri"] = Path(root).resolve().as_uri()
        answer = self.call(msg_id, "initialize", params, timeout=60)
        if answer is None or "result" not in answer:
            raise RuntimeError(f"initialize failed: {answer}")
        self.notify("initialized", {})
        return answer["result"]

    # ------------------------------------------------------------------- exit
    def stop(self, timeout: float = 10.0) -> int:
        """shutdown + exit; the exit code."""
        try:
            self.call("shutdown", "shutdown", timeout=timeout)
            self.notify("exit")
        except OSError:
            pass
        return self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout)
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def rss_kb(self) -> int:
        """The server's resident memory now, in KiB (0 once it has exited)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path and self.stderr_path.exists() else ""
