"""Chat over LSP: ``gemma/chat`` streams an answer as ``$/progress`` partial results, the way
Copilot's language server streams a conversation turn; ``gemma.chat`` does the same for clients
that can only run commands; history, reset and the list of sessions. See docs/chat.md.

Cancelling (``$/cancelRequest``, or cancel on the work-done progress) stops generation within one
token; the partial answer stays in the history, marked as cut.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from gemma_lsp import protocol
from gemma_lsp.chat.service import ChatError
from gemma_lsp.errors import ModelUnavailable
from gemma_lsp.prompts import PromptError

from .feature import LanguageFeature, command, request
from .prompts import prompt_inputs
from .values import plain, validated

log = logging.getLogger(__name__)

_FLUSH_S = 0.05  # streamed pieces are sent together, at most every 50 ms (a token takes ~25-40 ms)
_REPORT_S = 0.5  # work-done reports at most every half second


class ChatFeature(LanguageFeature):
    name = "chat"

    @request(protocol.CHAT)
    async def chat(self, params: Any) -> dict:
        arg = _object(params, protocol.CHAT)
        return await self.answer(protocol.CHAT, arg, arg.get("partialResultToken"), arg.get("workDoneToken"))

    @command(protocol.CHAT_COMMAND)
    async def chat_command(self, arg: dict) -> dict:
        token = f"gemma-lsp/chat/{uuid.uuid4()}"
        created = await self.server.begin_progress(token, "Gemma is answering", cancellable=True)
        return await self.answer(protocol.CHAT_COMMAND, arg, None, token if created else None, begun=created)

    @request(protocol.CHAT_HISTORY)
    async def history(self, params: Any) -> dict:
        session = await self._session(protocol.CHAT_HISTORY, _object(params, protocol.CHAT_HISTORY), required=True)
        turns = await self.services.chat.history(session)
        return {"session": session, "turns": [{"role": t.role, "text": t.text, "cut": t.cut} for t in turns]}

    @request(protocol.CHAT_RESET)
    async def reset(self, params: Any) -> dict:
        session = await self._session(protocol.CHAT_RESET, _object(params, protocol.CHAT_RESET), required=True)
        return {"session": session, "turns": await self.services.chat.reset(session)}

    @request(protocol.CHAT_SESSIONS)
    async def sessions(self, params: Any) -> list[dict]:
        _object(params, protocol.CHAT_SESSIONS)
        return await self.services.chat.sessions()

    # ------------------------------------------------------------------ a turn
    async def answer(self, name: str, arg: dict, partial: Any, work: Any, begun: bool = False) -> dict:
        message = arg.get("message")
        if not isinstance(message, str) or not message.strip():
            raise JsonRpcInvalidParams(f"{name} needs message: a non-empty string.")
        # A new session's id is made here, so the first streamed piece can already name it.
        session = await self._session(name, arg, required=False) or uuid.uuid4().hex[:12]
        template = arg.get("template") or "chat"
        preset = arg.get("preset")
        if not isinstance(template, str):
            raise JsonRpcInvalidParams(f"{name}: template must be the name of a prompt template.")
        if preset is not None and preset not in self.server.settings.sampling.presets:
            known = ", ".join(sorted(self.server.settings.sampling.presets))
            raise JsonRpcInvalidParams(f"{name}: there is no sampler preset {preset!r} (known: {known}).")
        inputs = prompt_inputs(self.server, name, arg)

        server = self.server
        task = asyncio.current_task()
        if work is not None:
            if not begun:
                server.work_done_progress.begin(
                    work, lsp.WorkDoneProgressBegin(title="Gemma is answering", cancellable=True)
                )
            _on_cancel(server, work, task)
        pieces, pending = 0, []
        flushed = reported = 0.0

        def flush() -> None:
            nonlocal flushed
            if pending and partial is not None:
                value = {"text": "".join(pending), "session": session}
                server.protocol.notify(lsp.PROGRESS, lsp.ProgressParams(token=partial, value=value))
            pending.clear()
            flushed = loop.time()

        def on_text(delta: str) -> None:
            nonlocal pieces, reported
            pieces += 1
            pending.append(delta)
            now = loop.time()
            if now - flushed >= _FLUSH_S or pieces == 1:
                flush()
            if work is not None and now - reported >= _REPORT_S:
                reported = now
                server.work_done_progress.report(work, lsp.WorkDoneProgressReport(message=f"{pieces} pieces"))

        loop = asyncio.get_running_loop()

        outcome = "cancelled"
        try:
            try:
                result = await self.services.chat.turn(
                    message, inputs, session=session, template=template, preset=preset, on_text=on_text
                )
            finally:
                flush()  # what the last 50 ms brought, before the result (or the cancellation)
            outcome = result.stop_reason
            return result.to_json()
        except (ChatError, PromptError) as exc:
            outcome = "error"
            raise JsonRpcInvalidParams(f"{name}: {exc}") from None
        except ModelUnavailable as exc:
            outcome = "error"
            server.report_unavailable(exc)
            raise JsonRpcInternalError(str(exc)) from None
        finally:
            if work is not None:
                server.work_done_progress.end(work, lsp.WorkDoneProgressEnd(message=outcome))
                server.work_done_progress.tokens.pop(work, None)

    async def _session(self, name: str, arg: dict, required: bool) -> str | None:
        session = arg.get("session")
        if session is None and not required:
            return None
        if not isinstance(session, str) or not session:
            raise JsonRpcInvalidParams(f"{name} needs session: the id of a chat session (see {protocol.CHAT_SESSIONS}).")
        if not await self.services.chat.history(session):
            raise JsonRpcInvalidParams(f"{name}: there is no chat session {session!r}.")
        return session


def _object(params: Any, name: str) -> dict:
    return validated(name, plain(params) if params is not None else None)


def _on_cancel(server, token: Any, task: asyncio.Task | None) -> None:
    """Cancel ``task`` when the user cancels the work-done progress ``token`` in the editor."""
    future = server.work_done_progress.tokens.get(token)
    if future is None or task is None:
        return
    loop = asyncio.get_running_loop()

    def cancelled(f) -> None:
        if f.cancelled():
            loop.call_soon_threadsafe(task.cancel)

    future.add_done_callback(cancelled)
