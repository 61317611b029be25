"""A real OpenAI-compatible inference server on a loopback port, for tests and benchmarks.

:class:`OpenAIServer` runs llama-cpp-python's server (``python -m llama_cpp.server``, its
``[server]`` extra) on a GGUF model, as a child process: start, stop, kill mid-answer, start
again on the same port. The remote backend's tests and ``gemma-lsp bench completion --backend
openai`` use it; nothing in the server itself does.

``python -m gemma_lsp.engine.testserver ARGS`` runs the same server with ARGS and one addition:
after each request it writes ``gemma-lsp-server-ms path=... max_tokens=... ms=...`` to stderr,
the time the server spent on it from the request's arrival to the last byte of its answer (the
benchmark sets the HTTP hop's cost against it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TIMING_MARK = "gemma-lsp-server-ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OpenAIServer:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, as a child process."""

    def __init__(
        self,
        model: Path | str,
        port: int | None = None,
        *,
        log_path: Path | str | None = None,
        api_key: str | None = None,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        embedding: bool = False,
        interrupt_requests: bool = False,
        timing: bool = False,
    ) -> None:
        self.model = Path(model)
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.api_key = api_key
        self.certfile, self.keyfile = certfile, keyfile
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.embedding = embedding
        self.interrupt_requests = interrupt_requests
        self.timing = timing
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        module = "gemma_lsp.engine.testserver" if self.timing else "llama_cpp.server"
        args = [
            sys.executable, "-m", module, "--model", str(self.model), "--host", "127.0.0.1",
            "--port", str(self.port), "--n_ctx", str(self.n_ctx),
            "--interrupt_requests", str(self.interrupt_requests),
        ]
        if self.n_threads:
            args += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        if self.embedding:
            args += ["--embedding", "True"]
        if self.api_key:
            args += ["--api_key", self.api_key]
        if self.certfile:
            args += ["--ssl_certfile", str(self.certfile), "--ssl_keyfile", str(self.keyfile)]
        return args

    def start(self, timeout: float = 120.0) -> "OpenAIServer":
        """Start it and wait until it answers; RuntimeError with its log's end if it does not."""
        if self.process is not None and self.process.poll() is None:
            return self
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._log = out if self.log_path else None
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test server stopped at start (exit {self.process.returncode}): {self.log_tail()}")
            if self.answers():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the test server did not answer within {timeout:.0f} s: {self.log_tail()}")

    def answers(self) -> bool:
        """True when its HTTP port answers (any status)."""
        import ssl

        context = ssl._create_unverified_context() if self.certfile else None
        try:
            urllib.request.urlopen(self.url.rsplit("/v1", 1)[0] + "/health", timeout=1.0, context=context)
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False
        return True

    def stop(self) -> None:
        """Terminate it and wait for the port to be free."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: the server dies at once, in the middle of whatever it sends."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]

    def timings(self) -> list[dict]:
        """What the timing wrapper logged, request by request (``timing=True``)."""
        if self.log_path is None or not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith(TIMING_MARK + " "):
                found.append(json.loads(line[len(TIMING_MARK) + 1 :]))
        return found

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _timed(app):
    """``app`` with the time of each request written to stderr (an ASGI middleware)."""

    async def timed(scope, receive, send):
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        started = time.perf_counter()
        body = bytearray()

        async def receive_body():
            message = await receive()
            if message.get("type") == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def send_timed(message):
            await send(message)
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                try:
                    max_tokens = json.loads(bytes(body) or b"{}").get("max_tokens")
                except ValueError:
                    max_tokens = None
                record = {"path": scope.get("path"), "max_tokens": max_tokens, "ms": (time.perf_counter() - started) * 1000}
                print(f"{TIMING_MARK} {json.dumps(record)}", file=sys.stderr, flush=True)

        return await app(scope, receive_body, send_timed)

    return timed


def main() -> None:
    import llama_cpp.server.app as server_app

    create_app = server_app.create_app
    server_app.create_app = lambda *a, **k: _timed(create_app(*a, **k))
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
