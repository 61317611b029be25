"""The completion path: document + cursor -> suggestion, from type-ahead, the cache or the engine.

Plain Python with no LSP types: the server, the CLI and benchmarks call it alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gemma_lsp.config import CompletionSettings
from gemma_lsp.engine import EngineManager, GenerationLimits, GenerationRequest, SamplingSpec, TokenPrompt

from .cache import CompletionCache, TypeAhead, prompt_key
from .context import Chunk, RetrievalCache, Retriever, RingContext
from .fim import FimPromptBuilder, FimWindows
from .lines import suggestion_lines, whole_part
from .postprocess import postprocess


@dataclass(frozen=True)
class Suggestion:
    """Text that replaces ``document[start:end]`` (``start == end`` for a plain insert)."""

    text: str
    start: int
    end: int
    source: str  # "engine" | "cache" | "type_ahead"


SamplingFactory = Callable[[CompletionSettings], SamplingSpec]

# Control characters a model can emit but no source file wants (tab and line breaks stay).
_CONTROL_CHARACTERS = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}


def greedy(settings: CompletionSettings) -> SamplingSpec:
    """Greedy: what a service gets when nobody chose a sampler preset for it."""
    return SamplingSpec()


@dataclass
class CompletionStats:
    requests: int = 0
    engine: int = 0
    cache_hits: int = 0
    type_ahead_hits: int = 0
    empty: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    # The most recent requests (newest last), for benchmarks that match answers to keystrokes.
    history: list[dict[str, Any]] = field(default_factory=list)

    def record(self, entry: dict[str, Any], keep: int = 64) -> None:
        self.last = entry
        self.history.append(entry)
        if len(self.history) > 2 * keep:
            del self.history[:-keep]


class CompletionService:
    def __init__(
        self,
        engine: EngineManager,
        settings: Callable[[], CompletionSettings],
        sampling: SamplingFactory = greedy,
        cache_size: int = 256,
        retriever: Retriever | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._sampling = sampling
        self._fim = FimPromptBuilder()
        self._cache = CompletionCache(cache_size)
        self._type_ahead = TypeAhead()
        self.stats = CompletionStats()
        initial = settings()
        self.ring = RingContext(initial.extra_context_chunks, initial.extra_context_lines)
        self._active: tuple[str, str, int, str | None] | None = None  # the last completion's place
        self._prefetch_task: asyncio.Task | None = None
        # The document whose full-window prompt the KV cache holds (or is filling in the background).
        self._warm_uri: str | None = None
        self._grow_task: asyncio.Task | None = None
        self._growing: str | None = None  # the document the pending grow is for
        self._retrieval: RetrievalCache | None = None
        self._retrieved: list[Chunk] = []  # what the last completion got from the retriever
        self.set_retriever(retriever)

    def set_retriever(self, retriever: Retriever | None) -> None:
        """Where extra context comes from besides the ring (workspace memories)."""
        self._retrieval = RetrievalCache(retriever) if retriever is not None else None
        self._retrieved = []

    def note_file(self, path: str, text: str, line: int = 0, prefetch: bool = True) -> None:
        """A file was opened, saved or left: offer a chunk of it to the extra context.

        When the ring changes, the prompt for the place the user completes at is evaluated in
        the background, so the next keystroke finds the new chunks already in the KV cache.
        """
        settings = self._settings()
        self.ring.max_chunks, self.ring.chunk_lines = settings.extra_context_chunks, settings.extra_context_lines
        if settings.extra_context_tokens <= 0 or not self.ring.add(path, text, line):
            return
        if prefetch and self._active is not None and (self._prefetch_task is None or self._prefetch_task.done()):
            self._prefetch_task = asyncio.ensure_future(self._prefetch())

    async def _prefetch(self) -> None:
        await asyncio.sleep(0)  # let a request that is already on its way go first
        if self._active is None:
            return
        uri, text, offset, path = self._active
        settings = self._settings()
        if await self._engine.prefetch(self._prompt(uri, text, offset, path, settings, settings.prefix_tokens)):
            self._warm_uri = uri

    def _prefix_budget(self, uri: str, settings: CompletionSettings) -> int:
        """The full prefix window when the KV cache holds this document's prompt, else the cold one.

        A cold request (a file just opened, or the cache filled by another file) would pay the
        prefill of the whole window, ~1,000 tokens and seconds on a laptop CPU, before the first
        token. It is answered from a short window instead, and the full window is evaluated in
        the background afterwards (any keystroke pre-empts that), so the requests after it get
        the whole context at the cost of a few tokens each.
        """
        full, cold = settings.prefix_tokens, settings.cold_prefix_tokens
        return full if cold <= 0 or cold >= full or self._warm_uri == uri else cold

    def _grow(self, uri: str, text: str, offset: int, path: str | None) -> None:
        """Evaluate the full-window prompt in the background once the user pauses.

        Not at once: while the user types, every keystroke reuses the short window's cache, and
        a background evaluation of another prompt would overwrite it (the cache holds one
        sequence) only to be cut off by the next keystroke.
        """

        async def grow() -> None:
            settings = self._settings()
            await asyncio.sleep(settings.grow_after_ms / 1000)
            if await self._engine.prefetch(self._prompt(uri, text, offset, path, settings, settings.prefix_tokens)):
                self._warm_uri = uri

        self._cancel_grow()
        self._growing = uri
        self._grow_task = asyncio.ensure_future(grow())

    def _cancel_grow(self) -> None:
        if self._grow_task is not None:
            self._grow_task.cancel()
            self._grow_task = None

    def _prompt(
        self, uri: str, text: str, offset: int, path: str | None, settings: CompletionSettings, prefix_tokens: int
    ):
        windows = FimWindows(
            prefix_tokens, settings.suffix_tokens, settings.fim_order, settings.extra_context_tokens,
            heal=settings.token_healing,
        )
        # Retrieved chunks first (they change least often), then the ring's, newest last.
        extra = [*self._retrieved, *self.ring.chunks(exclude_path=path)]
        return TokenPrompt(lambda tokenizer: self._fim.build(tokenizer, uri, text, offset, windows, path, extra))

    def forget(self, uri: str) -> None:
        """The document closed: drop its state and cancel its unfinished request."""
        if self._growing == uri:
            self._cancel_grow()
        if self._warm_uri == uri:
            self._warm_uri = None
        self._fim.forget(uri)
        self._type_ahead.forget(uri)
        self._engine.cancel_key(uri)

    def clear_cache(self) -> None:
        """Settings that change what the model writes make every cached answer stale."""
        self._cache.clear()

    async def suggest(
        self, uri: str, text: str, offset: int, path: str | None = None, language: str = ""
    ) -> Suggestion | None:
        """A suggestion for the cursor at ``offset`` (a str index) in ``text``, or None.

        Raises :class:`~gemma_lsp.errors.Cancelled` when superseded by a newer request for the
        same document or cancelled by the caller, and ModelUnavailable when there is no model.
        """
        settings = self._settings()
        if not settings.enabled:
            return None
        self._cancel_grow()  # the user is active: the pause the window grows in has not come
        started = time.perf_counter()
        self.stats.requests += 1
        offset = max(0, min(offset, len(text)))
        finish = lambda raw, source, engine=None: self._deliver(  # noqa: E731
            uri, text, offset, raw, settings, language, source, started, engine
        )

        rest = self._type_ahead.remainder(uri, text, offset)
        if rest is not None:
            self._engine.cancel_key(uri)  # whatever was running for this document is stale now
            self.stats.type_ahead_hits += 1
            return finish(rest, "type_ahead")

        self._active = (uri, text, offset, path)
        if self._retrieval is not None and settings.extra_context_tokens > 0:
            self._retrieved = await self._retrieval.chunks(
                text, offset, settings.extra_context_tokens // 2, settings.retrieval_timeout_ms / 1000
            )
        budget = self._prefix_budget(uri, settings)
        key = prompt_key(
            text, offset, budget, settings.suffix_tokens,
            (path, settings.model_dump_json(), self.ring.version if settings.extra_context_tokens else 0,
             tuple(self._retrieved)),
        )
        raw = self._cache.get(key)
        if raw is not None:
            self._engine.cancel_key(uri)
            self.stats.cache_hits += 1
            return finish(raw, "cache")

        lines = suggestion_lines(text, offset, language, settings.max_lines)
        request = GenerationRequest(
            prompt=self._prompt(uri, text, offset, path, settings, budget),
            sampling=self._sampling(settings),
            limits=GenerationLimits(
                max_tokens=settings.max_tokens,
                max_lines=lines,
                time_limit_s=settings.time_limit_ms / 1000 if settings.time_limit_ms else None,
            ),
            key=uri,
        )
        result = await self._engine.generate(request)
        if budget == settings.prefix_tokens or self._fim.from_start:  # the full window would be the same
            self._warm_uri = uri
        else:
            self._warm_uri = None
            self._grow(uri, text, offset, path)
        result.text = whole_part(result.text, result.stop_reason, lines)
        self._cache.put(key, result.text)
        self.stats.engine += 1
        engine = {
            "engine_ms": result.engine_ms,
            "prompt_tokens": result.prompt_tokens,
            "tokens_evaluated": result.tokens_evaluated,
            "tokens_generated": result.tokens_generated,
            "prefill_ms": result.prefill_ms,
            "decode_ms": result.decode_ms,
            "threads": result.threads,
            "stop_reason": result.stop_reason,
            "prompt_mode": self._fim.mode,
            "prefix_window": budget,
        }
        return finish(result.text, "engine", engine)

    def _deliver(
        self,
        uri: str,
        text: str,
        offset: int,
        raw: str,
        settings: CompletionSettings,
        language: str,
        source: str,
        started: float,
        engine: dict[str, Any] | None,
    ) -> Suggestion | None:
        raw = raw.translate(_CONTROL_CHARACTERS)
        edit = postprocess(raw, text, offset, language=language, max_lines=settings.max_lines)
        self.stats.record({
            "source": source,
            "offset": offset,
            "text_len": len(text),
            "service_ms": (time.perf_counter() - started) * 1000,
            "engine_ms": 0.0,
            "tokens_evaluated": 0,
            "extra_chunks": len(self.ring.chunks(exclude_path=self._active[3] if self._active else None)),
            "retrieved_chunks": len(self._retrieved),
            **(engine or {}),
        })
        if edit is None:
            self.stats.empty += 1
            self._type_ahead.forget(uri)
            return None
        if edit.start == edit.end == offset:
            self._type_ahead.remember(uri, text, offset, edit.text)
        else:
            self._type_ahead.forget(uri)
        return Suggestion(text=edit.text, start=edit.start, end=edit.end, source=source)
