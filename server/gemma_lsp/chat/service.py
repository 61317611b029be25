"""One chat turn: the message rendered through a prompt template, the conversation so far as chat
messages within the context budget, generation streamed piece by piece, the turn kept.

Plain Python with no LSP types: the language server streams ``on_text`` pieces as ``$/progress``
partial results. Turns go to a :class:`TurnStore` (the workspace's memories, as episodic
``chat_turn`` memories), so a conversation survives a restart of the server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gemma_lsp.config import ChatSettings
from gemma_lsp.engine import ChatMessage, ChatPrompt, EngineManager, GenerationLimits, GenerationRequest, SamplingSpec
from gemma_lsp.engine.request import GenerationResult
from gemma_lsp.errors import Cancelled, GemmaLspError
from gemma_lsp.prompts import PromptInputs, RenderedPrompt


class ChatError(GemmaLspError):
    """A chat request that cannot be served, said in one sentence."""


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str
    cut: bool = False  # the answer was cancelled before it ended
    at: float = field(default_factory=time.time)


class TurnStore(Protocol):
    """Where turns are kept (the workspace's memories, through the composition layer)."""

    async def save(self, session: str, index: int, turn: Turn) -> None: ...

    async def load(self, session: str) -> list[Turn]: ...

    async def sessions(self) -> list[dict[str, Any]]: ...

    async def delete(self, session: str) -> int: ...


@dataclass
class ChatResult:
    session: str
    text: str
    stop_reason: str  # the engine's, or "cancelled"
    stats: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "text": self.text, "stopReason": self.stop_reason, "stats": self.stats}


Render = Callable[[str, PromptInputs], Awaitable[RenderedPrompt]]
ChatSettingsSource = Callable[[], ChatSettings]
Sampling = Callable[[str | None], SamplingSpec]  # preset name (None: the chat feature's) -> specs


def _estimate_tokens(text: str) -> int:
    return (len(text) * 2 + 6) // 7  # ~3.5 characters per token, as the memory layer estimates


class ChatService:
    def __init__(
        self,
        engine: EngineManager,
        render: Render,
        settings: ChatSettingsSource,
        sampling: Sampling,
        store: Callable[[], TurnStore | None],
    ) -> None:
        self._engine = engine
        self._render = render
        self._settings = settings
        self._sampling = sampling
        self._store = store
        self._sessions: dict[str, list[Turn]] = {}

    async def history(self, session: str) -> list[Turn]:
        """The session's turns, oldest first (read from the store after a restart)."""
        if session not in self._sessions:
            store = self._store()
            self._sessions[session] = await store.load(session) if store is not None else []
        return self._sessions[session]

    async def reset(self, session: str) -> int:
        """Forget the session; how many turns it had."""
        turns = len(await self.history(session))
        self._sessions.pop(session, None)
        store = self._store()
        if store is not None:
            await store.delete(session)
        self._engine.cancel_key(f"chat:{session}")
        return turns

    async def sessions(self) -> list[dict[str, Any]]:
        store = self._store()
        known = {s["session"]: s for s in (await store.sessions() if store is not None else [])}
        for session, turns in self._sessions.items():
            if turns and session not in known:
                known[session] = {"session": session, "turns": len(turns), "last": turns[-1].at}
        return sorted(known.values(), key=lambda s: s.get("last") or 0, reverse=True)

    async def turn(
        self,
        message: str,
        inputs: PromptInputs,
        *,
        session: str | None = None,
        template: str = "chat",
        preset: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatResult:
        """Answer ``message``; ``on_text`` gets every piece as it is generated.

        Raises :class:`Cancelled` when the caller is cancelled (the partial answer is kept in the
        history, marked as cut), ``ModelUnavailable`` without a model, :class:`ChatError` for a bad
        request, ``PromptError`` for a broken template.
        """
        if not message.strip():
            raise ChatError("The chat message is empty.")
        session = session or uuid.uuid4().hex[:12]
        settings = self._settings()
        history = await self.history(session)
        rendered = await self._render(
            template, PromptInputs(**{**inputs.__dict__, "question": message, "conversation": session})
        )
        messages = self._messages(history, rendered.text, settings)
        request = GenerationRequest(
            ChatPrompt(tuple(messages)),
            self._sampling(preset),
            GenerationLimits(max_tokens=settings.max_tokens, time_limit_s=None),
            key=f"chat:{session}",
            lane="chat",
        )
        await self._keep(session, history, Turn("user", message))
        parts: list[str] = []
        result: GenerationResult | None = None
        started = time.perf_counter()
        first_ms: float | None = None
        try:
            async for item in self._engine.stream(request):
                if isinstance(item, GenerationResult):
                    result = item
                    continue
                if first_ms is None:
                    first_ms = (time.perf_counter() - started) * 1000
                parts.append(item)
                if on_text is not None:
                    on_text(item)
        except BaseException:  # cancelled ($/cancelRequest, progress cancel) or failed: keep what came
            await self._keep(session, history, Turn("assistant", "".join(parts), cut=True))
            raise
        text = "".join(parts)
        await self._keep(session, history, Turn("assistant", text))
        if result is None:
            raise Cancelled("the chat turn ended without a result")
        total_ms = (time.perf_counter() - started) * 1000
        stats = {
            "ttft_ms": round(first_ms if first_ms is not None else total_ms, 1),
            "total_ms": round(total_ms, 1),
            "prompt_tokens": result.prompt_tokens,
            "tokens_reused": result.tokens_reused,
            "tokens_generated": result.tokens_generated,
            "decode_ms": round(result.decode_ms, 1),
            "tokens_per_s": round(result.tokens_generated / (result.decode_ms / 1000), 2) if result.decode_ms else None,
            "context_ms": round(rendered.context_ms, 1),
            "template": rendered.name,
        }
        return ChatResult(session, text, result.stop_reason, stats)

    def _messages(self, history: list[Turn], current: str, settings: ChatSettings) -> list[ChatMessage]:
        """The newest turns that fit the history budget (oldest dropped first), then the message."""
        budget = settings.history_tokens
        kept: list[ChatMessage] = []
        for turn in reversed(history):
            if not turn.text:
                continue  # an answer cancelled before its first piece
            cost = _estimate_tokens(turn.text) + 4
            if cost > budget:
                break
            budget -= cost
            kept.append(ChatMessage("assistant" if turn.role == "assistant" else "user", turn.text))
        kept.reverse()
        if kept and kept[0].role == "assistant":
            kept = kept[1:]  # a conversation starts with the user
        return [*kept, ChatMessage("user", current)]

    async def _keep(self, session: str, history: list[Turn], turn: Turn) -> None:
        history.append(turn)
        store = self._store()
        if store is not None and turn.text:
            await store.save(session, len(history) - 1, turn)
