"""Every custom method, command and notification gemma-lsp speaks, with its parameter shape.

The one place a name is spelled: the server registers handlers from these constants, the
editor-like client in ``lsp/client.py`` and the tests send them, and ``gemma-lsp protocol``
prints :func:`describe` as JSON for clients written in other languages (the VS Code extension).
Imports nothing, so any client can read it without pygls.

Commands (``workspace/executeCommand``) take one object argument; a parameter ending in ``?``
is optional.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Message:
    name: str
    kind: Literal["request", "command", "notification"]
    summary: str
    params: dict[str, str] = field(default_factory=dict)  # parameter -> its type and meaning
    result: str = "null"


# ------------------------------------------------------------------------ requests
STATS = "gemma/stats"
CHAT = "gemma/chat"
CHAT_HISTORY = "gemma/chat/history"
CHAT_RESET = "gemma/chat/reset"
CHAT_SESSIONS = "gemma/chat/sessions"

# ------------------------------------------------------------------------ commands
MEMORY_REMEMBER = "gemma.memory.remember"
MEMORY_SEARCH = "gemma.memory.search"
MEMORY_FORGET = "gemma.memory.forget"
MEMORY_STATS = "gemma.memory.stats"
INDEX_REBUILD = "gemma.index.rebuild"
COMPLETION_ACCEPTED = "gemma.completion.accepted"
PROMPT_LIST = "gemma.prompt.list"
PROMPT_RENDER = "gemma.prompt.render"
CHAT_COMMAND = "gemma.chat"
ACTION_RUN = "gemma.action.run"

_RANGE = "{start: {line, character}, end: {line, character}} in the client's position encoding"

_CHAT_PARAMS = {
    "message": "string (what the user asks)",
    "session?": "string (an existing session; none starts a new one)",
    "uri?": "string (an open document)", "range?": _RANGE + " (the selection the message is about)",
    "template?": "string (a prompt template; default chat)", "preset?": "string (a sampler preset; default chat)",
}

MESSAGES: tuple[Message, ...] = (
    Message(
        STATS, "request", "Engine counters, the model's state and the last completion's figures.",
        result="{loaded, model, load_error, requests, completed, cancelled, ..., last, completion}",
    ),
    Message(
        CHAT, "request",
        "One chat turn, streamed: with a partialResultToken every piece comes as $/progress {text: delta}; "
        "with a workDoneToken, begin/report/end progress that the user can cancel.",
        {**_CHAT_PARAMS, "partialResultToken?": "token", "workDoneToken?": "token"},
        "{session, text, stopReason, stats: {ttft_ms, total_ms, prompt_tokens, tokens_generated, tokens_per_s, ...}}",
    ),
    Message(CHAT_HISTORY, "request", "A session's turns, oldest first.", {"session": "string"},
            "{session, turns: [{role, text, cut}]}"),
    Message(CHAT_RESET, "request", "Forget a session.", {"session": "string"}, "{session, turns}"),
    Message(CHAT_SESSIONS, "request", "Every session, newest first.", result="[{session, turns, last, first}]"),
    Message(
        CHAT_COMMAND, "command", "gemma/chat for clients that can only run commands: work-done progress, the answer.",
        _CHAT_PARAMS, "{session, text, stopReason, stats}",
    ),
    Message(
        ACTION_RUN, "command",
        "Run a code action (the command of the actions textDocument/codeAction lists): fix, document and tests "
        "apply their edit through workspace/applyEdit; ask and explain answer as gemma.chat does.",
        {"action": "ask | explain | fix | document | tests", "uri": "string (an open document)", "range": _RANGE,
         "diagnostics?": "Diagnostic[] (for fix)", "question?": "string (for ask)"},
        "{applied, edits} for edits; {session, text, stopReason, stats} for answers",
    ),
    Message(
        MEMORY_REMEMBER, "command", "Store a memory: a text, or the text of a range of an open document.",
        {"text?": "string", "uri?": "string (an open document)", "range?": _RANGE,
         "tier?": "working | short_term | long_term | episodic | semantic", "kind?": "string",
         "tags?": "string[]", "importance?": "number 0-1"},
        "{id, tier, kind}",
    ),
    Message(
        MEMORY_SEARCH, "command", "The best memories for a query.",
        {"query": "string", "k?": "integer 1-100 (default 5)"},
        "[{id, text, score, tier, kind, tags, source}]",
    ),
    Message(MEMORY_FORGET, "command", "Delete memories by id.", {"ids": "string[]"}, "{forgotten: integer}"),
    Message(MEMORY_STATS, "command", "Counts of memories by tier and kind, and the store's state.", result="object"),
    Message(INDEX_REBUILD, "command", "Index the workspace again (changed files only), with progress.",
            result="{files, chunks_written, secrets_skipped}"),
    Message(
        COMPLETION_ACCEPTED, "command",
        "Sent by the client when the user accepts an inline completion (the items carry it).",
        {"uri": "string", "text": "string"},
    ),
    Message(PROMPT_LIST, "command", "Every prompt template with its file, description, variables and error.",
            result="[{name, path, description, variables, error}]"),
    Message(
        PROMPT_RENDER, "command", "A template filled in for a selection, with memories, as the model receives it.",
        {"template": "string", "uri?": "string (an open document)", "range?": _RANGE, "text?": "string",
         "question?": "string"},
        "{template, text, rag_context, rag_recent, ...}",
    ),
)

COMMANDS: tuple[str, ...] = tuple(m.name for m in MESSAGES if m.kind == "command")


def describe() -> list[dict]:
    """Every message as plain data (what ``gemma-lsp protocol`` prints)."""
    return [asdict(m) for m in MESSAGES]
