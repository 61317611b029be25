"""Every custom method, command and notification gemma-lsp speaks, with its parameter shape.

The one place a name is spelled: the server registers handlers from these constants, the
editor-like client in ``lsp/client.py`` and the tests send them, and ``gemma-lsp protocol``
prints :func:`describe` as JSON for clients written in other languages (the VS Code extension).
Imports only pydantic, so any client can read it without pygls.

Commands (``workspace/executeCommand``) take one object argument. Each message's parameters are
one strict pydantic model (below): the server validates every argument through it
(:func:`parse`; a wrong type, a missing or unknown field, a number out of range or a text over
``MAX_TEXT`` characters is one ``InvalidParams`` sentence naming the command and the field), and
``gemma-lsp protocol`` prints its JSON schema. In ``params``, a name ending in ``?`` is optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_TEXT = 64 * 1024  # characters of one text argument (a note, a message, a selection's text)
MAX_UINT = 2**31 - 1  # LSP's uinteger bound, for lines and characters

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(min_length=1, max_length=256)]
Uri = Annotated[str, Field(min_length=1, max_length=8192, description="a document URI (file://...)")]
UInt = Annotated[int, Field(ge=0, le=MAX_UINT)]


class Params(BaseModel):
    """Base of every message's parameters: strict types (no "1" for 1, no true for 1), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class Position(Params):
    line: UInt
    character: UInt


class Range(Params):
    """{start: {line, character}, end: {line, character}} in the client's position encoding."""

    start: Position
    end: Position


class Diagnostic(BaseModel):
    """The part of an LSP Diagnostic a fix uses; the rest of what a client sends is ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
    message: Text
    range: Range | None = None


class NoParams(Params):
    """No parameters (an empty object, or none)."""


class ChatParams(Params):
    message: Text = Field(description="what the user asks")
    session: Name | None = Field(None, description="an existing session; none starts a new one")
    uri: Uri | None = Field(None, description="an open document")
    range: Range | None = Field(None, description="the selection the message is about")
    template: Name | None = Field(None, description="a prompt template; default chat")
    preset: Name | None = Field(None, description="a sampler preset; default chat")


class ChatRequestParams(ChatParams):
    partialResultToken: int | str | None = None
    workDoneToken: int | str | None = None


class SessionParams(Params):
    session: Name


class ActionParams(Params):
    action: Literal["ask", "explain", "fix", "document", "tests"]
    uri: Uri = Field(description="an open document")
    range: Range
    diagnostics: list[Diagnostic] = Field(default_factory=list, max_length=1000, description="for fix")
    question: Text | None = Field(None, description="for ask")


class RememberParams(Params):
    text: Text | None = Field(None, description="the note; or leave it out and give uri and range")
    uri: Uri | None = Field(None, description="an open document")
    range: Range | None = None
    tier: Literal["working", "short_term", "long_term", "episodic", "semantic"] | None = None
    kind: Literal["code_chunk", "note", "chat_turn", "accepted_completion", "doc"] | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list, max_length=64)
    importance: float = Field(0.5, ge=0, le=1)


class SearchParams(Params):
    query: Text = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)


class ForgetParams(Params):
    ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=10_000)


class AcceptedParams(Params):
    uri: Uri
    text: Text


class RenderParams(Params):
    template: Name
    uri: Uri | None = Field(None, description="an open document")
    range: Range | None = None
    text: Text | None = None
    question: Text | None = None


@dataclass(frozen=True)
class Message:
    name: str
    kind: Literal["request", "command", "notification"]
    summary: str
    model: type[Params] = NoParams  # the parameters
    result: str = "null"

    @property
    def params(self) -> dict[str, str]:
        """parameter (``?`` = optional) -> its type and meaning, read from the model's JSON schema."""
        schema = self.model.model_json_schema()
        required = set(schema.get("required", ()))
        return {
            f"{key}{'' if key in required else '?'}": _short(prop, schema.get("$defs", {}))
            + (f" ({prop['description']})" if prop.get("description") else "")
            for key, prop in schema.get("properties", {}).items()
        }


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

MESSAGES: tuple[Message, ...] = (
    Message(
        STATS, "request", "Engine counters, the model's state and the last completion's figures.",
        result="{loaded, model, load_error, requests, completed, cancelled, ..., last, completion}",
    ),
    Message(
        CHAT, "request",
        "One chat turn, streamed: with a partialResultToken every piece comes as $/progress {text: delta}; "
        "with a workDoneToken, begin/report/end progress that the user can cancel.",
        ChatRequestParams,
        "{session, text, stopReason, stats: {ttft_ms, total_ms, prompt_tokens, tokens_generated, tokens_per_s, ...}}",
    ),
    Message(CHAT_HISTORY, "request", "A session's turns, oldest first.", SessionParams,
            "{session, turns: [{role, text, cut}]}"),
    Message(CHAT_RESET, "request", "Forget a session.", SessionParams, "{session, turns}"),
    Message(CHAT_SESSIONS, "request", "Every session, newest first.", result="[{session, turns, last, first}]"),
    Message(
        CHAT_COMMAND, "command", "gemma/chat for clients that can only run commands: work-done progress, the answer.",
        ChatParams, "{session, text, stopReason, stats}",
    ),
    Message(
        ACTION_RUN, "command",
        "Run a code action (the command of the actions textDocument/codeAction lists): fix, document and tests "
        "apply their edit through workspace/applyEdit; ask and explain answer as gemma.chat does.",
        ActionParams,
        "{applied, edits} for edits; {session, text, stopReason, stats} for answers",
    ),
    Message(
        MEMORY_REMEMBER, "command", "Store a memory: a text, or the text of a range of an open document.",
        RememberParams,
        "{id, tier, kind}",
    ),
    Message(
        MEMORY_SEARCH, "command", "The best memories for a query.",
        SearchParams,
        "[{id, text, score, tier, kind, tags, source}]",
    ),
    Message(MEMORY_FORGET, "command", "Delete memories by id.", ForgetParams, "{forgotten: integer}"),
    Message(MEMORY_STATS, "command", "Counts of memories by tier and kind, and the store's state.", result="object"),
    Message(INDEX_REBUILD, "command", "Index the workspace again (changed files only), with progress.",
            result="{files, chunks_written, secrets_skipped}"),
    Message(
        COMPLETION_ACCEPTED, "command",
        "Sent by the client when the user accepts an inline completion (the items carry it).",
        AcceptedParams,
    ),
    Message(PROMPT_LIST, "command", "Every prompt template with its file, description, variables and error.",
            result="[{name, path, description, variables, error}]"),
    Message(
        PROMPT_RENDER, "command", "A template filled in for a selection, with memories, as the model receives it.",
        RenderParams,
        "{template, text, rag_context, rag_recent, ...}",
    ),
)

COMMANDS: tuple[str, ...] = tuple(m.name for m in MESSAGES if m.kind == "command")


BY_NAME: dict[str, Message] = {m.name: m for m in MESSAGES}


class InvalidParams(ValueError):
    """A message's parameters do not fit its model; the text is one sentence naming the message and field."""


def parse(name: str, value: Any) -> Params:
    """``value`` (the command's object argument, or a request's params) validated by ``name``'s model."""
    model = BY_NAME[name].model if name in BY_NAME else NoParams
    if value is None or value == []:  # Neovim sends an empty Lua table ({}) as []
        value = {}
    if not isinstance(value, dict):
        raise InvalidParams(f"{name} takes one object argument, got {_json_type(value)}.")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the argument"
        got = "" if first["type"] in ("missing", "extra_forbidden") else f" (got {_json_type(first.get('input'))})"
        raise InvalidParams(f"{name}: {where}: {first['msg'].rstrip('.')}{got}.") from None


def describe() -> list[dict]:
    """Every message as plain data (what ``gemma-lsp protocol`` prints): its parameters as a short
    list and as the JSON schema the server validates them with."""
    return [
        {"name": m.name, "kind": m.kind, "summary": m.summary, "params": m.params,
         "schema": m.model.model_json_schema(), "result": m.result}
        for m in MESSAGES
    ]


def _short(prop: dict, defs: dict) -> str:
    """A JSON schema as a short type: ``string``, ``integer 1-100``, ``a | b``, ``Range``, ``string[]``."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        kinds = [_short(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        return " | ".join(kinds)
    if "enum" in prop:
        return " | ".join(str(v) for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"{_short(prop.get('items', {}), defs)}[]"
    low, high = prop.get("minimum"), prop.get("maximum")
    if kind in ("integer", "number") and low is not None and high is not None:
        return f"{kind} {low}-{high}"
    return kind


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if len(value) <= 40 else f"a string of {len(value)} characters"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
