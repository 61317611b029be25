"""The Gemma manager: one loaded model, one worker thread, cancellation, latest-wins, idle unload.

Every backend call runs on a single dedicated worker thread, never on the asyncio loop
(llama.cpp releases the GIL, so the loop stays responsive while the model works). Jobs queue
on that thread in order; the model loads there too, so a request that arrives during a load
simply waits for it.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from gemma_lsp.config import ModelSettings
from gemma_lsp.errors import Cancelled, ModelUnavailable
from gemma_lsp.sampling import Greedy, Sampler

from .backend import Backend, ModelInfo

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]  # (message, percentage 0-100); called on the worker
BackendFactory = Callable[[ModelSettings, ProgressCallback], Backend]


@dataclass(frozen=True)
class GenerationLimits:
    max_tokens: int
    max_lines: int | None = None  # stop before the newline that would start line max_lines + 1
    time_limit_s: float | None = None
    stop_ids: frozenset[int] | None = None  # None = the model's eos, end-of-turn, file separator


@dataclass
class GenerationRequest:
    """One generation: how to build the prompt (on the worker), how to sample, when to stop.

    ``key`` groups requests that supersede each other (a document URI for completions):
    submitting a request cancels every older unfinished request with the same key.
    """

    build_prompt: Callable[[Backend], list[int]]
    sampler: Sampler
    limits: GenerationLimits
    key: str | None = None
    # False: the text arrives in one piece at the end (one wake-up of the event loop instead of
    # one per token, which is what a completion wants); True: piece by piece as generated.
    incremental: bool = True
    # Background work (filling the KV cache ahead of time): any foreground request cancels it.
    background: bool = False


@dataclass
class GenerationResult:
    text: str
    stop_reason: str  # "stop_token" | "max_tokens" | "max_lines" | "time_limit"
    prompt_tokens: int
    tokens_reused: int
    tokens_evaluated: int
    tokens_generated: int
    engine_ms: float  # time the worker spent on this request (prompt build + eval + sampling)
    queue_ms: float  # time the request waited for the worker


@dataclass(eq=False)  # identity semantics: jobs live in sets
class _Job:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    cancel_event: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.perf_counter)
    tokens_sampled: int = 0
    sampled_at_cancel: int | None = None
    done: bool = False

    def cancel(self) -> None:
        if not self.cancel_event.is_set():
            self.sampled_at_cancel = self.tokens_sampled
            self.cancel_event.set()

    def emit(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


@dataclass
class EngineStats:
    """Counters the server reports through ``gemma/stats`` (tests and benchmarks read them)."""

    loads: int = 0
    unloads: int = 0
    load_failures: int = 0
    requests: int = 0
    completed: int = 0
    prefetched: int = 0  # background prompt evaluations that ran to the end
    prefetch_cancelled: int = 0
    cancelled: int = 0
    superseded: int = 0
    tokens_evaluated: int = 0
    tokens_generated: int = 0
    # Most tokens sampled after a request's cancel flag was set, over all cancelled requests.
    max_tokens_after_cancel: int = 0
    # The last cancelled request: tokens sampled before its cancel flag was set, and after.
    last_cancel: dict[str, int] | None = None
    last_load_ms: float | None = None
    last: dict[str, Any] | None = None


_END = object()


class EngineManager:
    """Owns the one loaded model and serves every request from it."""

    def __init__(self, settings: ModelSettings, backend_factory: BackendFactory | None = None) -> None:
        if backend_factory is None:
            from .llamacpp import LlamaCppBackend

            backend_factory = LlamaCppBackend.load
        self._factory = backend_factory
        self._settings = settings
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gemma-engine")
        self._backend: Backend | None = None
        self._load_error: ModelUnavailable | None = None
        self._latest: dict[str, _Job] = {}
        self._background: set[_Job] = set()
        self._in_flight = 0
        self._last_used = time.monotonic()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._progress: ProgressCallback | None = None
        self.stats = EngineStats()

    # ----------------------------------------------------------------- state
    @property
    def settings(self) -> ModelSettings:
        return self._settings

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def info(self) -> ModelInfo | None:
        return self._backend.info if self._backend else None

    @property
    def load_error(self) -> str | None:
        return str(self._load_error) if self._load_error else None

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Called (on the worker thread) with load progress; the server turns it into LSP progress."""
        self._progress = callback

    # ------------------------------------------------------------- lifecycle
    async def load(self) -> ModelInfo:
        """Load the model on the worker (a no-op when loaded). Raises :class:`ModelUnavailable`."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._load_on_worker)

    def configure(self, settings: ModelSettings) -> None:
        """Set the model settings before anything is loaded (at initialize)."""
        if self._backend is not None:
            raise RuntimeError("the model is loaded: use reconfigure()")
        self._settings = settings
        self._load_error = None

    async def reconfigure(self, settings: ModelSettings) -> bool:
        """Adopt new model settings; returns True when the model must be reloaded (it is unloaded)."""
        if settings == self._settings:
            return False
        self._settings = settings
        self._load_error = None
        await self.unload()
        return True

    async def unload(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._unload_on_worker)

    async def close(self) -> None:
        for job in list(self._latest.values()):
            job.cancel()
        if self._idle_handle:
            self._idle_handle.cancel()
        await self.unload()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _load_on_worker(self) -> ModelInfo:
        if self._backend is not None:
            return self._backend.info
        if self._load_error is not None:
            raise self._load_error
        started = time.perf_counter()
        progress = self._progress or (lambda message, pct: None)
        try:
            self._backend = self._factory(self._settings, progress)
        except ModelUnavailable as exc:
            self._load_error = exc
            self.stats.load_failures += 1
            raise
        self.stats.loads += 1
        self.stats.last_load_ms = (time.perf_counter() - started) * 1000
        log.info("model loaded in %.0f ms: %s", self.stats.last_load_ms, self._backend.info)
        return self._backend.info

    def _unload_on_worker(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
            self.stats.unloads += 1
            log.info("model unloaded")

    # ------------------------------------------------------------ idle unload
    def _touch(self) -> None:
        self._last_used = time.monotonic()
        idle = self._settings.idle_unload_seconds
        if idle <= 0:
            return
        if self._idle_handle:
            self._idle_handle.cancel()
        self._idle_handle = asyncio.get_running_loop().call_later(idle, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_handle = None
        idle = self._settings.idle_unload_seconds
        if idle <= 0 or self._in_flight or self._backend is None:
            return
        if time.monotonic() - self._last_used >= idle - 0.01:
            log.info("unloading the model after %.0f s idle", idle)
            asyncio.get_running_loop().run_in_executor(self._executor, self._unload_on_worker)

    # ------------------------------------------------------------ generation
    def cancel_key(self, key: str) -> None:
        """Cancel the unfinished request for ``key``, if any (e.g. the document closed)."""
        job = self._latest.get(key)
        if job is not None:
            job.cancel()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        """Generate, yielding text as it comes; the last item is a :class:`GenerationResult`.

        Raises :class:`Cancelled` when the caller is cancelled or a newer request with the same
        key supersedes this one (and then yields nothing more), :class:`ModelUnavailable` when
        there is no model.
        """
        loop = asyncio.get_running_loop()
        job = _Job(request=request, loop=loop, queue=asyncio.Queue())
        if request.background:
            self._background.add(job)
        else:
            for bg in list(self._background):
                bg.cancel()  # the user is waiting: background work yields at once
            self.stats.requests += 1
        if request.key is not None:
            older = self._latest.get(request.key)
            if older is not None and not older.done:
                older.cancel()
                self.stats.superseded += 1
            self._latest[request.key] = job
        self._in_flight += 1
        future = loop.run_in_executor(self._executor, self._run_job, job)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                item = await job.queue.get()
                if item is _END:
                    break
                if job.cancel_event.is_set():
                    continue  # drain; a cancelled request delivers nothing
                if isinstance(item, bytes):
                    text = decoder.decode(item)
                    if text:
                        yield text
                elif isinstance(item, GenerationResult):
                    tail = decoder.decode(b"", final=True)
                    if tail:
                        yield tail
                    yield item
            await future  # re-raise the worker's error, if any
            if job.cancel_event.is_set():
                raise Cancelled("the request was cancelled")
        finally:
            if not job.done:
                # The caller went away ($/cancelRequest, shutdown): stop the worker and wait the
                # at most one token it takes, so that "cancelled" always means "engine free".
                job.cancel()
                try:
                    await asyncio.shield(future)
                except BaseException:  # noqa: BLE001 - the worker's outcome no longer matters
                    pass
            self._in_flight -= 1
            self._background.discard(job)
            if request.key is not None and self._latest.get(request.key) is job:
                del self._latest[request.key]
            self._touch()

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Run a whole generation; see :meth:`stream` for the errors."""
        request.incremental = False
        parts: list[str] = []
        async for item in self.stream(request):
            if isinstance(item, GenerationResult):
                item.text = "".join(parts)
                return item
            parts.append(item)
        raise Cancelled("the generation ended without a result")

    async def prefetch(self, build_prompt: Callable[[Backend], list[int]], key: str | None = None) -> None:
        """Evaluate a prompt into the KV cache without generating, when nothing else waits.

        Any foreground request cancels it; errors are not the caller's problem (it is only a
        head start), so they are logged and dropped.
        """
        request = GenerationRequest(build_prompt, Greedy(), GenerationLimits(max_tokens=0), key=None, background=True)
        try:
            await self.generate(request)
        except (Cancelled, ModelUnavailable):
            pass
        except Exception:  # noqa: BLE001
            log.exception("background prompt evaluation failed")

    def _run_job(self, job: _Job) -> None:
        try:
            self._generate_on_worker(job)
        except Cancelled:
            self._record_cancel(job)
        finally:
            job.done = True
            job.emit(_END)

    def _record_cancel(self, job: _Job) -> None:
        if job.request.background:
            self.stats.prefetch_cancelled += 1
            return
        self.stats.cancelled += 1
        if job.sampled_at_cancel is not None:
            overrun = job.tokens_sampled - job.sampled_at_cancel
            self.stats.last_cancel = {"sampled_before": job.sampled_at_cancel, "sampled_after": overrun}
            self.stats.max_tokens_after_cancel = max(self.stats.max_tokens_after_cancel, overrun)

    def _generate_on_worker(self, job: _Job) -> None:
        started = time.perf_counter()
        cancel = job.cancel_event
        if cancel.is_set():
            raise Cancelled("superseded before it started")
        self._load_on_worker()
        backend = self._backend
        assert backend is not None
        req = job.request
        limits = req.limits
        stop_ids = limits.stop_ids if limits.stop_ids is not None else backend.special.stop_ids()
        deadline = started + limits.time_limit_s if limits.time_limit_s else None

        prompt = req.build_prompt(backend)
        max_new = max(0, min(limits.max_tokens, backend.n_ctx - len(prompt)))
        first = backend.eval(prompt, abort=cancel)
        tokens_evaluated = first.tokens_evaluated
        logits = first.logits
        sampler = req.sampler
        sampler.reset()
        newlines = 0
        generated = 0
        stop_reason = "max_tokens"
        held: list[bytes] = []
        emit = job.emit if req.incremental else held.append
        for step in range(max_new):
            if cancel.is_set():
                raise Cancelled("cancelled during generation")
            token = sampler.sample(logits)
            job.tokens_sampled += 1
            sampler.accept(token)
            if token in stop_ids:
                stop_reason = "stop_token"
                break
            generated += 1
            piece = backend.token_bytes(token)
            if limits.max_lines is not None and b"\n" in piece:
                allowed = limits.max_lines - 1 - newlines
                if piece.count(b"\n") > allowed:
                    cut = -1
                    for _ in range(allowed + 1):
                        cut = piece.index(b"\n", cut + 1)
                    if cut > 0:
                        emit(piece[:cut])
                    stop_reason = "max_lines"
                    break
                newlines += piece.count(b"\n")
            emit(piece)
            if deadline is not None and time.perf_counter() > deadline:
                stop_reason = "time_limit"
                break
            if step + 1 < max_new:
                logits = backend.extend([token], abort=cancel).logits
                tokens_evaluated += 1
        if held:
            job.emit(b"".join(held))
        engine_ms = (time.perf_counter() - started) * 1000
        if req.background:
            self.stats.prefetched += 1
            self.stats.tokens_evaluated += first.tokens_evaluated
            job.emit(GenerationResult("", "prefetch", len(prompt), first.tokens_reused, first.tokens_evaluated, 0,
                                      engine_ms, (started - job.submitted_at) * 1000))
            return
        self.stats.completed += 1
        self.stats.tokens_evaluated += first.tokens_evaluated
        self.stats.tokens_generated += generated
        result = GenerationResult(
            text="",  # the stream carries the text; generate() callers join it
            stop_reason=stop_reason,
            prompt_tokens=len(prompt),
            tokens_reused=first.tokens_reused,
            tokens_evaluated=first.tokens_evaluated,
            tokens_generated=generated,
            engine_ms=engine_ms,
            queue_ms=(started - job.submitted_at) * 1000,
        )
        self.stats.last = {
            "prompt_tokens": result.prompt_tokens,
            "tokens_reused": result.tokens_reused,
            "tokens_evaluated": result.tokens_evaluated,
            "tokens_generated": generated,
            "engine_ms": engine_ms,
            "queue_ms": result.queue_ms,
            "stop_reason": stop_reason,
        }
        job.emit(result)
