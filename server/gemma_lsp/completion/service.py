"""The completion path: document + cursor -> FIM prompt -> engine -> a suggestion to insert.

Plain Python with no LSP types: the server, the CLI and benchmarks call it alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gemma_lsp.config import CompletionSettings
from gemma_lsp.engine import EngineManager, GenerationLimits, GenerationRequest, GenerationResult
from gemma_lsp.sampling import Sampler, Temperature

from .fim import FimPromptBuilder, FimWindows


@dataclass(frozen=True)
class Suggestion:
    """Text to insert at the cursor; it replaces ``text[start:end]`` (empty for a plain insert)."""

    text: str
    start: int
    end: int
    stats: GenerationResult


SamplerFactory = Callable[[CompletionSettings], Sampler]


def default_sampler(settings: CompletionSettings) -> Sampler:
    return Temperature(settings.temperature, seed=settings.seed if settings.seed is not None else 0)


class CompletionService:
    def __init__(
        self,
        engine: EngineManager,
        settings: Callable[[], CompletionSettings],
        sampler_factory: SamplerFactory = default_sampler,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._sampler_factory = sampler_factory
        self._fim = FimPromptBuilder()

    def forget(self, uri: str) -> None:
        """The document closed: drop its state and cancel its unfinished request."""
        self._fim.forget(uri)
        self._engine.cancel_key(uri)

    async def suggest(self, uri: str, text: str, offset: int) -> Suggestion | None:
        """A suggestion for the cursor at ``offset`` (a str index) in ``text``, or None.

        Raises :class:`~gemma_lsp.errors.Cancelled` when superseded by a newer request for the
        same document or cancelled by the caller, and ModelUnavailable when there is no model.
        """
        settings = self._settings()
        if not settings.enabled:
            return None
        offset = max(0, min(offset, len(text)))
        windows = FimWindows(settings.prefix_tokens, settings.suffix_tokens)
        request = GenerationRequest(
            build_prompt=lambda backend: self._fim.build(backend, uri, text, offset, windows),
            sampler=self._sampler_factory(settings),
            limits=GenerationLimits(max_tokens=settings.max_tokens, max_lines=settings.max_lines),
            key=uri,
        )
        result = await self._engine.generate(request)
        insert = result.text.rstrip()
        if not insert.strip():
            return None
        return Suggestion(text=insert, start=offset, end=offset, stats=result)
