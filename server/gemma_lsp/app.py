"""The composition layer: the one place that builds gemma-lsp's services and reconfigures them.

``Services.from_settings(settings, root)`` builds the engine manager, the completion service,
the prompt library and the workspace's memory service (with its embedder) once;
``await services.apply(settings)`` pushes a settings change to every one of them. The language
server (``lsp/``), the command line (``cli.py``), the benchmarks (``bench/``) and the demo all
get their services here; none builds a service by hand.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gemma_lsp.actions import ActionService
from gemma_lsp.chat import ChatService, Turn
from gemma_lsp.completion import CompletionService
from gemma_lsp.completion.context import Chunk
from gemma_lsp.config import CompletionSettings, Settings
from gemma_lsp.engine import EngineManager, SamplingSpec
from gemma_lsp.engine.manager import BackendFactory
from gemma_lsp.errors import ModelUnavailable
from gemma_lsp.memory import Kind, MemoryUnavailable, Tier
from gemma_lsp.memory.search import Embedder
from gemma_lsp.memory.service import MemoryService
from gemma_lsp.prompts import PromptError, PromptInputs, PromptLibrary, RenderedPrompt, library_for, render_prompt

log = logging.getLogger(__name__)

Level = Literal["error", "warning", "info"]
Notify = Callable[[Level, str], None]  # one sentence for the user, e.g. a window message


def _log_notice(level: Level, message: str) -> None:
    getattr(log, level)(message)


@dataclass(frozen=True)
class Applied:
    """What a settings change did, so a front end can follow up (reload with progress, re-index)."""

    model: bool = False  # the model settings changed: the model was unloaded and must load again
    memory: bool = False  # memory or index settings changed: a new memory service must start
    prompts: bool = False  # the template folders (or render limits) changed


class Services:
    """Every service of one workspace, built from one :class:`Settings`."""

    def __init__(
        self,
        settings: Settings,
        root: Path | None,
        *,
        memory: bool = True,
        notify: Notify | None = None,
        backend_factory: BackendFactory | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.root = root
        self.notify: Notify = notify or _log_notice
        self._with_memory = memory
        self._embedder = embedder
        self.engine = EngineManager(settings.model, backend_factory)
        self.completions = CompletionService(
            self.engine, self._completion_settings, self.completion_sampling, retriever=self._retrieve
        )
        self.prompts: PromptLibrary = library_for(settings.prompts)
        self.memory: MemoryService | None = self._build_memory(settings) if memory else None
        self.chat = ChatService(
            self.engine, self.render, lambda: self.settings.chat, self.chat_sampling,
            lambda: MemoryTurns(self.memory) if self.memory is not None else None,
        )
        self.actions = ActionService(self.engine, self.render, self.action_sampling, lambda: self.settings.chat)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        root: Path | None = None,
        *,
        memory: bool = True,
        notify: Notify | None = None,
        backend_factory: BackendFactory | None = None,
        embedder: Embedder | None = None,
    ) -> "Services":
        """Build every service; nothing is loaded or read yet (see :meth:`start_memory`).

        ``memory=False`` leaves the workspace's memories closed (``memory`` is None);
        ``backend_factory`` and ``embedder`` replace what the settings name (benchmarks count
        an embedder's calls through them).
        """
        return cls(settings, root, memory=memory, notify=notify, backend_factory=backend_factory, embedder=embedder)

    # ------------------------------------------------------------------ builders
    def _build_memory(self, settings: Settings) -> MemoryService:
        embedder = self._embedder
        if embedder is None and settings.memory.embedding_model is not None:
            from gemma_lsp.engine.embedder import GgufEmbedder

            try:
                embedder = GgufEmbedder(settings.memory.embedding_model)
            except ModelUnavailable as exc:
                self.notify("warning", f"{exc} Memories use lexical search only.")
        elif embedder is None and _remote_embedding(settings) is not None:
            from gemma_lsp.engine.remote_embedder import RemoteEmbedder

            try:
                embedder = RemoteEmbedder(settings.model)
            except ModelUnavailable as exc:
                self.notify("warning", f"{exc} Memories use lexical search only.")
        return MemoryService(
            settings.memory, settings.index, self.root, embedder=embedder,
            on_degraded=lambda message: self.notify("warning", message),
            on_recovered=lambda: self.notify("info", "Memories are back."),
        )

    def _completion_settings(self) -> CompletionSettings:
        """The completion settings; token healing is off on a remote server (it needs the first
        generated token constrained to the typed text, which no server offers)."""
        completion = self.settings.completion
        if self.settings.model.backend != "llama.cpp" and completion.token_healing:
            return completion.model_copy(update={"token_healing": False})
        return completion

    def completion_sampling(self, completion: CompletionSettings) -> SamplingSpec:
        """The completion preset's sampler specs, seeded (the same prompt gives the same text)."""
        specs = self.settings.sampling.preset_for("completion", completion.preset)
        return SamplingSpec(tuple(specs), seed=completion.seed if completion.seed is not None else 0)

    def chat_sampling(self, preset: str | None) -> SamplingSpec:
        """The chat feature's preset (or ``preset``), seeded anew for every answer."""
        specs = self.settings.sampling.preset_for("chat", preset)
        return SamplingSpec(tuple(specs), seed=int.from_bytes(os.urandom(4), "little"))

    def action_sampling(self) -> SamplingSpec:
        """Code actions' preset (``sampling.features.actions``; by default the near-greedy completion one)."""
        return SamplingSpec(tuple(self.settings.sampling.preset_for("actions", None)), seed=0)

    async def _retrieve(self, query: str, budget_tokens: int) -> list[Chunk]:
        """Completion context from the workspace's memories (none while there is no memory service)."""
        if self.memory is None:
            return []
        return [Chunk(path, text) for path, text in await self.memory.retrieve(query, budget_tokens)]

    # ------------------------------------------------------------------ lifecycle
    async def start_memory(self) -> int:
        """Build the memory search index from the store; returns how many memories it holds."""
        if self.memory is None:
            return 0
        return await self.memory.start()

    async def apply(self, settings: Settings) -> Applied:
        """Push ``settings`` to every service; returns what the front end must follow up on."""
        old, self.settings = self.settings, settings
        prompts = settings.prompts.model_dump(exclude=_PROMPT_BUDGETS) != old.prompts.model_dump(exclude=_PROMPT_BUDGETS)
        if prompts:  # folders or render limits: a new library (its render workers) replaces the old
            previous, self.prompts = self.prompts, library_for(settings.prompts)
            previous.close()
        memory = self._with_memory and (
            settings.memory != old.memory or settings.index != old.index
            or _remote_embedding(settings) != _remote_embedding(old)
        )
        if memory:
            previous, self.memory = self.memory, self._build_memory(settings)
            if previous is not None:
                await previous.close()
        self.completions.clear_cache()  # any setting may change what the model would write
        model = await self.engine.reconfigure(settings.model)
        return Applied(model=model, memory=memory, prompts=prompts)

    async def close(self) -> None:
        self.prompts.close()
        await self.engine.close()
        if self.memory is not None:
            await self.memory.close()

    # ------------------------------------------------------------------ prompts
    async def render(self, name: str, inputs: PromptInputs, *, memories: bool = True) -> RenderedPrompt:
        """Template ``name`` filled in for ``inputs``, with the workspace's memories when there are any.

        Raises :class:`PromptError` for a missing or broken template. When the memory store is
        unavailable, the template renders without memories.
        """
        prompts = self.settings.prompts
        context = self.memory.context_for if memories and self.memory is not None else None
        try:
            return await render_prompt(
                self.prompts, name, inputs, context,
                rag_budget_tokens=prompts.rag_budget_tokens, recent_budget_tokens=prompts.recent_budget_tokens,
            )
        except MemoryUnavailable as exc:
            log.warning("prompt %s without memories: %s", name, exc)
            return await render_prompt(self.prompts, name, inputs, None)


_PROMPT_BUDGETS = {"rag_budget_tokens", "recent_budget_tokens"}  # read at each render: no new library


def _remote_embedding(settings: Settings) -> tuple[str, ...] | None:
    """The remote servers and model that embed memories, when the model's settings name one."""
    model = settings.model
    name = getattr(model, "embedding_model", None)
    if name is None or settings.memory.embedding_model is not None:
        return None
    return (name, *model.urls, str(model.api_key_env), str(model.api_key_file))


class MemoryTurns:
    """Chat turns kept as episodic ``chat_turn`` memories of the workspace, so a conversation
    survives a restart and recent turns reach prompts as ``rag_recent``.

    A turn's memory text starts with a header line, ``[chat SESSION #N ROLE]`` (``cut`` added
    for an answer that was cancelled), which also keeps two equal texts apart (a memory's id is
    derived from its text).
    """

    _HEADER = re.compile(r"^\[chat (\S+) #(\d+) (user|assistant)( cut)?\]\n", re.S)

    def __init__(self, memory: MemoryService) -> None:
        self._memory = memory

    async def save(self, session: str, index: int, turn: Turn) -> None:
        header = f"[chat {session} #{index} {turn.role}{' cut' if turn.cut else ''}]\n"
        await self._memory.remember(
            header + turn.text, tier=Tier.episodic, kind=Kind.chat_turn, tags=("chat", f"session:{session}"),
            redact=True,  # a key pasted into a chat is never stored
        )

    async def load(self, session: str) -> list[Turn]:
        found = await self._memory.list(kinds=[Kind.chat_turn], tags=[f"session:{session}"])
        turns = []
        for memory in found:
            m = self._HEADER.match(memory.text)
            if m and m.group(1) == session:
                turns.append((int(m.group(2)), Turn(m.group(3), memory.text[m.end():], bool(m.group(4)), memory.created_at)))
        return [turn for _, turn in sorted(turns, key=lambda pair: pair[0])]

    async def sessions(self) -> list[dict]:
        found = await self._memory.list(kinds=[Kind.chat_turn], tags=["chat"])
        out: dict[str, dict] = {}
        for memory in found:
            m = self._HEADER.match(memory.text)
            if not m:
                continue
            entry = out.setdefault(m.group(1), {"session": m.group(1), "turns": 0, "last": 0.0, "first": ""})
            entry["turns"] += 1
            entry["last"] = max(entry["last"], memory.created_at)
            if m.group(2) == "0":
                entry["first"] = memory.text[m.end():][:80]
        return list(out.values())

    async def delete(self, session: str) -> int:
        found = await self._memory.list(kinds=[Kind.chat_turn], tags=[f"session:{session}"])
        return await self._memory.forget([m.id for m in found])


__all__ = ["Applied", "MemoryTurns", "Notify", "PromptError", "Services"]
