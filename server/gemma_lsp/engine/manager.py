"""The Gemma manager: one loaded model, one worker thread, cancellation, latest-wins, idle unload.

Every backend call runs on a single dedicated worker thread, never on the asyncio loop
(llama.cpp releases the GIL, so the loop stays responsive while the model works). Jobs queue
on that thread in order; the model loads there too, so a request that arrives during a load
simply waits for it.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from gemma_lsp.config import ModelSettings
from gemma_lsp.errors import Cancelled, ModelUnavailable

from .backend import ModelInfo
from .request import GenerationLimits, GenerationRequest, GenerationResult, Prompt
from .runtime import ProgressCallback, RunControl, Runtime

log = logging.getLogger(__name__)

BackendFactory = Callable[[ModelSettings, ProgressCallback], Runtime]


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
    claimed: bool = False  # taken by the worker (in its turn, or between two chat tokens)
    error: BaseException | None = None  # what the generation raised, for the caller to raise

    def cancel(self) -> None:
        if not self.cancel_event.is_set():
            self.sampled_at_cancel = self.tokens_sampled
            self.cancel_event.set()

    def count_sample(self) -> None:
        self.tokens_sampled += 1

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
    interleaved: int = 0  # completion requests served between two tokens of a chat answer
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
            from .backends import load_runtime

            backend_factory = load_runtime
        self._factory = backend_factory
        self._settings = settings
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gemma-engine")
        self._runtime: Runtime | None = None
        self._load_error: ModelUnavailable | None = None
        # A change of model settings while a working model exists: the new model loads beside the
        # serving one and replaces it only once loaded; settings that failed are not tried again.
        self._good = False  # a model of self._settings has loaded (it may be idle-unloaded now)
        self._pending: ModelSettings | None = None
        self._failed: ModelSettings | None = None
        self._latest: dict[str, _Job] = {}
        self._background: set[_Job] = set()
        self._in_flight = 0
        self._last_used = time.monotonic()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._progress: ProgressCallback | None = None
        # Completion requests that arrived while a chat answer is being generated: the chat loop
        # runs them between two of its tokens (each lane has its own KV cache, so neither loses
        # its prefix), instead of making the user wait for the whole answer.
        self._urgent: collections.deque[_Job] = collections.deque()
        self._chatting = 0  # chat-lane jobs running on the worker now
        self._claim = threading.Lock()
        self.stats = EngineStats()

    # ----------------------------------------------------------------- state
    @property
    def settings(self) -> ModelSettings:
        return self._settings

    @property
    def pending(self) -> ModelSettings | None:
        """Model settings waiting to load (the current model serves until they have)."""
        return self._pending

    @property
    def loaded(self) -> bool:
        return self._runtime is not None

    @property
    def info(self) -> ModelInfo | None:
        return self._runtime.info if self._runtime else None

    @property
    def load_error(self) -> str | None:
        return str(self._load_error) if self._load_error else None

    def status(self) -> dict[str, Any] | None:
        """What the loaded runtime tells of itself (a remote one: its servers), or None."""
        report = getattr(self._runtime, "status", None)
        return report() if report is not None else None

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Called (on the worker thread) with load progress; the server turns it into LSP progress."""
        self._progress = callback

    # ------------------------------------------------------------- lifecycle
    async def load(self) -> ModelInfo:
        """Load the model on the worker (a no-op when loaded), or the pending one of a settings change.
        Raises :class:`ModelUnavailable`; a pending model that fails leaves the current one serving."""
        while self._pending is not None:
            await self._load_pending(self._pending)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._load_on_worker)

    async def reconfigure(self, settings: ModelSettings) -> bool:
        """Adopt new model settings; True when a model must load (:meth:`load`).

        When a model of the current settings has loaded, it keeps serving: the new one is pending
        until :meth:`load` has loaded it, and settings that failed to load are not tried again
        (False). Otherwise the new settings apply at once.
        """
        if settings == self._settings:
            self._pending = None  # back to the model that serves
            return False
        if settings == self._pending or settings == self._failed:
            return False
        self._failed = None
        if not self._good:
            # A load of the current settings may be under way on the worker: let it end first, so
            # a model that loads fine serves until the new one has loaded too.
            await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)
        if self._good:
            self._pending = settings
            return True
        self._settings, self._pending, self._load_error = settings, None, None
        await self.unload()
        return True

    async def _load_pending(self, settings: ModelSettings) -> None:
        """Load ``settings``' model off the worker (requests keep being served by the current one),
        then swap it in on the worker, between two requests."""
        loop = asyncio.get_running_loop()
        progress = self._progress or (lambda message, pct: None)
        started = time.perf_counter()
        try:
            runtime = await loop.run_in_executor(None, self._factory, settings, progress)
        except ModelUnavailable as exc:
            if self._pending == settings:
                self._pending, self._failed = None, settings
            self.stats.load_failures += 1
            keeps = self._settings.label or "the previous model"
            raise ModelUnavailable(f"{str(exc).rstrip('.')}. {keeps} keeps serving.") from exc
        if self._pending != settings:  # changed again meanwhile: this one is not wanted any more
            await loop.run_in_executor(self._executor, runtime.close)
            return
        await loop.run_in_executor(self._executor, self._swap_on_worker, runtime, settings)
        self.stats.last_load_ms = (time.perf_counter() - started) * 1000
        log.info("model changed in %.0f ms: %s", self.stats.last_load_ms, runtime.info)

    def _swap_on_worker(self, runtime: Runtime, settings: ModelSettings) -> None:
        self._unload_on_worker()
        self._runtime, self._settings, self._pending, self._load_error = runtime, settings, None, None
        self._good = True
        self.stats.loads += 1

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
        if self._runtime is not None:
            return self._runtime.info
        if self._load_error is not None:
            raise self._load_error
        started = time.perf_counter()
        progress = self._progress or (lambda message, pct: None)
        try:
            self._runtime = self._factory(self._settings, progress)
        except ModelUnavailable as exc:
            self._load_error = exc
            self.stats.load_failures += 1
            raise
        self._good = True
        self.stats.loads += 1
        self.stats.last_load_ms = (time.perf_counter() - started) * 1000
        log.info("model loaded in %.0f ms: %s", self.stats.last_load_ms, self._runtime.info)
        return self._runtime.info

    def _unload_on_worker(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
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
        if idle <= 0 or self._in_flight or self._runtime is None:
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
        if self._chatting and request.lane == "completion" and not request.background:
            self._urgent.append(job)
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
            # Errors come back through the job, not the executor's future: a job served between
            # two chat tokens is over long before the worker reaches its own turn.
            if job.error is not None:
                raise job.error
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

    async def prefetch(self, prompt: Prompt) -> bool:
        """Evaluate a prompt into the KV cache without generating, when nothing else waits.

        Any foreground request cancels it; errors are not the caller's problem (it is only a
        head start), so they are logged and dropped. True when the prompt was evaluated to its end.
        """
        request = GenerationRequest(prompt, limits=GenerationLimits(max_tokens=0), background=True)
        try:
            await self.generate(request)
            return True
        except (Cancelled, ModelUnavailable):
            return False
        except Exception:  # noqa: BLE001
            log.exception("background prompt evaluation failed")
            return False

    def _run_job(self, job: _Job) -> None:
        with self._claim:
            if job.claimed:
                return  # it already ran between two chat tokens
            job.claimed = True
        try:
            self._generate_on_worker(job)
        except Cancelled:
            self._record_cancel(job)
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's side
            job.error = exc
        finally:
            job.done = True
            job.emit(_END)

    def _serve_urgent(self) -> None:
        """Between two tokens of a chat answer: run the completion requests waiting behind it."""
        while self._urgent:
            job = self._urgent.popleft()
            self._run_job(job)
            self.stats.interleaved += 1

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
        if job.cancel_event.is_set():
            raise Cancelled("superseded before it started")
        self._load_on_worker()
        runtime = self._runtime
        assert runtime is not None
        req = job.request
        held: list[bytes] = []
        chat = req.lane != "completion"
        control = RunControl(
            job.cancel_event, job.emit if req.incremental else held.append, job.count_sample,
            between_tokens=self._serve_urgent if chat else None,
        )
        self._chatting += chat
        try:
            result = runtime.run(req, control)
        finally:
            self._chatting -= chat
        if held:
            job.emit(b"".join(held))
        result.queue_ms = (started - job.submitted_at) * 1000
        self.stats.tokens_evaluated += result.tokens_evaluated
        if req.background:
            self.stats.prefetched += 1
            job.emit(result)
            return
        self.stats.completed += 1
        self.stats.tokens_generated += result.tokens_generated
        self.stats.last = {
            "prompt_tokens": result.prompt_tokens,
            "tokens_reused": result.tokens_reused,
            "tokens_evaluated": result.tokens_evaluated,
            "tokens_generated": result.tokens_generated,
            "engine_ms": result.engine_ms,
            "queue_ms": result.queue_ms,
            "prefill_ms": result.prefill_ms,
            "decode_ms": result.decode_ms,
            "threads": result.threads,
            "stop_reason": result.stop_reason,
        }
        job.emit(result)
