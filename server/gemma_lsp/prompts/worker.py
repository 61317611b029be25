"""Templates render in a separate process, with a deadline and a memory limit.

The bounded sandbox (``sandbox.py``) refuses what it can see coming: a huge string, number,
range or list. What it cannot see, a template busy for minutes in a pure loop or a macro that
calls itself exponentially, must still not stall the server or eat its memory. So templates
render in a worker process (``python -m gemma_lsp.prompts.worker``):

- its address space is limited (``RLIMIT_AS``, ``prompts.render_memory_mb``): a template that
  needs more gets a MemoryError there, the server's memory does not grow;
- the server waits for an answer at most ``prompts.render_timeout_seconds``, then kills the
  worker (the next render starts a fresh one); ``RLIMIT_CPU`` also ends a worker still busy
  when the server itself is gone, and a worker exits when its input closes;
- the server waits on a thread (``asyncio.to_thread``), so requests keep being answered.

Workers are kept between renders (a render costs a pipe round trip, about a millisecond), and up
to :data:`POOL_SIZE` render at once. Where there are no process limits (no ``resource`` module),
templates render in the server's process with the sandbox's bounds and an in-process deadline.

The protocol on the pipes: a 4-byte big-endian length, then a JSON object; one answer per job.
"""

from __future__ import annotations

import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import jinja2

from .sandbox import BoundedEnvironment, TemplateLimit, render_bounded

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

POOL_SIZE = 2
STARTUP_SECONDS = 30
_HEADER = struct.Struct(">I")
ENVIRONMENT_OPTIONS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "autoescape": False,
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
}


class RenderFailed(Exception):
    """A render was refused or failed; ``reason`` is one sentence, ``line`` the template's line if known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


# ---------------------------------------------------------------------------- rendering (either side)
class Renderer:
    """Compiles and renders jobs in this process: what a worker does, and the fallback."""

    def __init__(self) -> None:
        self._envs: dict[tuple, BoundedEnvironment] = {}
        self._compiled: dict[tuple, jinja2.Template] = {}

    def render(self, job: dict[str, Any]) -> str:
        key = (tuple(job["dirs"]), job["max_chars"])
        env = self._envs.get(key)
        if env is None:
            env = self._envs[key] = BoundedEnvironment(job["dirs"], job["max_chars"], **ENVIRONMENT_OPTIONS)
        compiled = self._compiled.get((key, job["source"]))
        try:
            if compiled is None:
                if len(self._compiled) > 64:
                    self._compiled.clear()
                compiled = self._compiled[(key, job["source"])] = env.from_string(job["source"])
            return render_bounded(compiled, job["values"], max_chars=job["max_chars"], seconds=job["seconds"])
        except MemoryError as exc:
            raise RenderFailed(
                f"rendering needed more than the {job['memory_mb']:,} MB of memory a template may use", _template_line(exc)
            ) from None
        except RecursionError as exc:
            raise RenderFailed("rendering recursed too deeply (a macro calling itself?)", _template_line(exc)) from None
        except Exception as exc:  # a sandbox refusal, a limit, an undefined attribute, a type error
            raise RenderFailed(_reason(exc), _template_line(exc)) from None


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.rstrip(".") + "."


def _template_line(exc: BaseException) -> int | None:
    """The template line an error came from: jinja's own, or the last template frame's."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# ---------------------------------------------------------------------------- the worker process
def _read_message(stream) -> dict[str, Any] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return json.loads(stream.read(size))


def _write_message(stream, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def main(argv: list[str] | None = None) -> None:
    """The worker: limits itself, then renders jobs from stdin until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    memory_mb = int(args[0]) if args else 512
    if resource is not None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    renderer = Renderer()
    _write_message(stdout, {"ready": True})  # starting is not part of any render's deadline
    while True:
        job = _read_message(stdin)
        if job is None:
            return
        if resource is not None:  # a worker left busy after the server is gone ends by itself
            used = resource.getrusage(resource.RUSAGE_SELF)
            cpu = used.ru_utime + used.ru_stime
            resource.setrlimit(resource.RLIMIT_CPU, (int(cpu + job["seconds"]) + 2, resource.RLIM_INFINITY))
        try:
            answer: dict[str, Any] = {"text": renderer.render(job)}
        except RenderFailed as exc:
            answer = {"error": exc.reason, "line": exc.line}
        _write_message(stdout, answer)


# ---------------------------------------------------------------------------- the server's side
class _Worker:
    def __init__(self, memory_mb: int) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gemma_lsp.prompts.worker", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is the server's to handle
        )  # fmt: skip
        self.memory_mb = memory_mb
        assert self.process.stdout is not None
        try:
            self._receive(time.monotonic() + STARTUP_SECONDS)
        except (TimeoutError, EOFError, ValueError):
            self.stop()
            raise OSError(f"it did not start within {STARTUP_SECONDS} s") from None

    def ask(self, job: dict[str, Any], seconds: float) -> dict[str, Any]:
        """The answer to ``job``; raises TimeoutError past ``seconds``, EOFError if the worker died."""
        assert self.process.stdin is not None and self.process.stdout is not None
        _write_message(self.process.stdin, job)
        return self._receive(time.monotonic() + seconds)

    def _receive(self, deadline: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        (size,) = _HEADER.unpack(self._read(fd, _HEADER.size, deadline))
        return json.loads(self._read(fd, size, deadline))

    @staticmethod
    def _read(fd: int, size: int, deadline: float) -> bytes:
        data = b""
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            log.warning("a template worker (pid %d) did not stop", self.process.pid)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


class RenderPool:
    """Renders jobs in worker processes with a deadline and a memory limit (see the module doc)."""

    def __init__(self, *, seconds: float = 3.0, memory_mb: int = 512, size: int = POOL_SIZE) -> None:
        self.seconds = seconds
        self.memory_mb = memory_mb
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._isolated = resource is not None and sys.platform != "emscripten"
        self._local = Renderer() if not self._isolated else None
        self._local_lock = threading.Lock()
        weakref.finalize(self, _stop_all, self._idle)  # a pool nobody closed leaves no process behind

    def render(self, job: dict[str, Any]) -> str:
        """The job's text; raises RenderFailed with one sentence on any refusal, limit or failure."""
        job = {**job, "seconds": self.seconds, "memory_mb": self.memory_mb}
        if not self._isolated:
            with self._local_lock:
                assert self._local is not None
                return self._local.render(job)
        with self._slots:
            worker = self._take()
            try:
                answer = worker.ask(job, self.seconds + 0.05)  # the worker's own deadline checks come first
            except TimeoutError:
                worker.stop()
                raise RenderFailed(
                    f"rendering took longer than {self.seconds:g} s, the most a template may take "
                    "(prompts.render_timeout_seconds)"
                ) from None
            except (EOFError, OSError, ValueError):
                code = worker.process.poll()
                worker.stop()
                raise RenderFailed(_death(code, self.memory_mb)) from None
            self._give_back(worker)
        if "error" in answer:
            raise RenderFailed(answer["error"], answer.get("line"))
        return answer["text"]

    def warm(self) -> None:
        """Start one worker now, so the first render does not wait for it."""
        if self._isolated and not self._closed:
            self._give_back(self._take())

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.stop()
        try:
            return _Worker(self.memory_mb)
        except OSError as exc:
            raise RenderFailed(f"cannot start a template worker: {exc.strerror or exc}") from None

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.stop()

    def close(self) -> None:
        """Stop the workers (a render under way answers with its worker's end)."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for worker in idle:
            worker.stop()

    def pids(self) -> list[int]:
        """The idle workers' process ids (for tests and diagnostics)."""
        with self._lock:
            return [w.process.pid for w in self._idle]


def _stop_all(workers: list[_Worker]) -> None:
    while workers:
        workers.pop().stop()


def _death(code: int | None, memory_mb: int) -> str:
    if code is not None and code < 0:
        import signal

        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if name == "SIGXCPU":
            return "rendering used more processor time than a template may take"
        return f"the template's render process was stopped ({name})"
    return f"the template's render process ended (exit code {code}); it may have needed more than {memory_mb:,} MB"


if __name__ == "__main__":
    main()

__all__ = ["ENVIRONMENT_OPTIONS", "POOL_SIZE", "RenderFailed", "RenderPool", "Renderer"]
