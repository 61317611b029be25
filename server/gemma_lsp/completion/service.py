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
from .fim import FimPromptBuilder, FimWindows, after_start
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
        # Where the KV cache holds (or is filling in the background) a full-window prompt: the
        # document and the text after the cursor's line (what the prompt puts first, see _place).
        self._warm: tuple[str, int] | None = None
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
        if await self._engine.prefetch(self._prompt(uri, text, offset, path, settings, full=True)):
            self._warm = self._place(uri, text, offset)

    @staticmethod
    def _place(uri: str, text: str, offset: int) -> tuple[str, int]:
        """What decides whether a full-window prompt evaluated before can be reused: the document
        and the text after the cursor's line, which the prompt's suffix part holds. Typing on the
        line keeps it; moving to another line changes it."""
        return uri, hash(text[after_start(text, offset) :])

    def _windows(self, warm: bool, settings: CompletionSettings) -> tuple[int, int]:
        """(prefix, suffix) token windows: the full ones when the KV cache holds a full prompt for
        this place (``warm``), else the cold ones.

        A cold request (a file just opened, the cursor moved to another line, or the cache filled
        by another file) would pay the prefill of the whole windows, ~2,000 tokens and seconds on
        a laptop CPU, before the first token. It is answered from short windows instead, and the full window is evaluated in
        the background afterwards (any keystroke pre-empts that), so the requests after it get
        the whole context at the cost of a few tokens each.
        """
        full = settings.prefix_tokens, settings.suffix_tokens
        cold = settings.cold_prefix_tokens, min(settings.cold_suffix_tokens, settings.suffix_tokens)
        if warm or settings.cold_prefix_tokens <= 0 or cold == full:
            return full
        return min(cold[0], full[0]), cold[1]

    def _grow(self, uri: str, text: str, offset: int, path: str | None) -> None:
        """Evaluate the full-window prompt in the background once the user pauses.

        Not at once: while the user types, every keystroke reuses the short window's cache, and
        a background evaluation of another prompt would overwrite it (the cache holds one
        sequence) only to be cut off by the next keystroke.
        """

        async def grow() -> None:
            settings = self._settings()
            await asyncio.sleep(settings.grow_after_ms / 1000)
            if await self._engine.prefetch(self._prompt(uri, text, offset, path, settings, full=True)):
                self._warm = self._place(uri, text, offset)

        self._cancel_grow()
        self._growing = uri
        self._grow_task = asyncio.ensure_future(grow())

    def _cancel_grow(self) -> None:
        if self._grow_task is not None:
            self._grow_task.cancel()
            self._grow_task = None

    def _prompt(
        self,
        uri: str,
        text: str,
        offset: int,
        path: str | None,
        settings: CompletionSettings,
        full: bool = False,
        windows: tuple[int, int] | None = None,
    ):
        prefix_tokens, suffix_tokens = self._windows(True, settings) if full or windows is None else windows
        windows = FimWindows(
            prefix_tokens, suffix_tokens, settings.fim_order, settings.extra_context_tokens,
            heal=settings.token_healing,
        )
        # Retrieved chunks first (they change least often), then the ring's, newest last.
        extra = [*self._retrieved, *self.ring.chunks(exclude_path=path)]
        return TokenPrompt(lambda tokenizer: self._fim.build(tokenizer, uri, text, offset, windows, path, extra))

    def forget(self, uri: str) -> None:
        """The document closed: drop its state and cancel its unfinished request."""
        if self._growing == uri:
            self._cancel_grow()
        if self._warm is not None and self._warm[0] == uri:
            self._warm = None
        if self._active is not None and self._active[0] == uri:
            self._active = None  # nothing to evaluate ahead for a closed document
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
        place = self._place(uri, text, offset)
        windows = self._windows(self._warm == place, settings)
        key = prompt_key(
            text, offset, *windows,
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
            prompt=self._prompt(uri, text, offset, path, settings, windows=windows),
            sampling=self._sampling(settings),
            limits=GenerationLimits(
                max_tokens=settings.max_tokens,
                max_lines=lines,
                time_limit_s=settings.time_limit_ms / 1000 if settings.time_limit_ms else None,
            ),
            key=uri,
        )
        result = await self._engine.generate(request)
        full = self._windows(True, settings)
        if windows == full or (self._fim.from_start and windows[1] >= full[1]):  # the full window is the same
            self._warm = place
        else:
            self._warm = None
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
            "prefix_window": windows[0],
            "suffix_window": windows[1],
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
