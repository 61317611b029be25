"""Every command's arguments against the real server over stdio: wrong types, missing and unknown
fields, numbers out of range, huge texts. Each gets exactly one InvalidParams (-32602) answer that
names the command and the field, no window message, and the server answers the next valid request.

The bad values are derived from each message's JSON schema in ``protocol.py``, so a new command
or field is fuzzed without touching this file.
"""

from __future__ import annotations

import copy

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from gemma_lsp import protocol
from lsp_support import SERVER_COMMAND

INVALID_PARAMS = -32602
RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
SOURCE = "def total(items):\n    return sum(items)\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield lsp_client
    if lsp_client.capabilities is not None:
        await lsp_client.shutdown_session()


def valid_argument(name: str, uri: str) -> dict:
    """A valid argument of each message, which the fuzzer spoils one field at a time."""
    return {
        protocol.CHAT: {"message": "hi"}, protocol.CHAT_COMMAND: {"message": "hi"},
        protocol.CHAT_HISTORY: {"session": "s"}, protocol.CHAT_RESET: {"session": "s"},
        protocol.ACTION_RUN: {"action": "explain", "uri": uri, "range": RANGE},
        protocol.MEMORY_REMEMBER: {"text": "a note"}, protocol.MEMORY_SEARCH: {"query": "total"},
        protocol.MEMORY_FORGET: {"ids": ["abc"]}, protocol.COMPLETION_ACCEPTED: {"uri": uri, "text": "x"},
        protocol.PROMPT_RENDER: {"template": "explain"},
    }.get(name, {})


def _resolve(prop: dict, defs: dict) -> dict:
    if "$ref" in prop:
        return defs[prop["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in prop:
        return _resolve(next(p for p in prop["anyOf"] if p.get("type") != "null"), defs)
    return prop


def bad_values(prop: dict, defs: dict, required: bool) -> list:
    """Values the field's schema refuses."""
    prop = _resolve(prop, defs)
    out: list = [None] if required else []
    if "enum" in prop:
        return out + ["forever", 1, True]
    kind = prop.get("type")
    if kind == "string":
        out += [12345, True, ["a", "b"], {"a": 1}, 1.5]
        out += ["x" * (prop["maxLength"] + 1)] if "maxLength" in prop else []
        out += [""] if prop.get("minLength") else []
    elif kind == "integer":
        out += [True, "5", 1.5, [5]]
        out += [prop["minimum"] - 1] if "minimum" in prop else []
        out += [prop["maximum"] + 1] if "maximum" in prop else []
    elif kind == "number":
        out += [True, "0.5", [0.5]]
        out += [prop["minimum"] - 0.1] if "minimum" in prop else []
        out += [prop["maximum"] + 0.1] if "maximum" in prop else []
    elif kind == "array":
        items = _resolve(prop.get("items", {}), defs)
        out += ["abc", {"a": 1}, [12345]]
        if "maxItems" in prop:
            one = "x" if items.get("type") == "string" else {"message": "m"}
            out.append([one] * (prop["maxItems"] + 1))
        if items.get("type") == "object":
            out += [[{"message": 5}], [{"range": RANGE}]]
    elif kind == "object":  # Range
        start_bad = [{"line": -1, "character": 0}, {"line": 2**31, "character": 0}, {"line": 0, "character": "0"},
                     {"line": True, "character": 0}, {"line": 0}, {"line": 0, "character": 0, "x": 1}]
        out += ["0:1", [0, 1], 5, {"start": {"line": 0, "character": 0}}, {**RANGE, "middle": 1}]
        out += [{"start": s, "end": RANGE["end"]} for s in start_bad]
    return out


def cases(uri: str):
    """(message, kind, field or None, argument) for every bad argument of every message with parameters."""
    for message in protocol.MESSAGES:
        base = valid_argument(message.name, uri)
        schema = message.model.model_json_schema()
        required = set(schema.get("required", ()))
        assert required <= set(base), f"valid_argument lacks a required field of {message.name}"
        yield message.name, message.kind, "unknown_field", {**base, "unknown_field": 1}
        if message.kind == "command":
            yield message.name, message.kind, None, 5  # not an object
            yield message.name, message.kind, None, "text"
        for field, prop in schema.get("properties", {}).items():
            if field in ("partialResultToken", "workDoneToken"):
                continue
            for value in bad_values(prop, schema.get("$defs", {}), field in required):
                argument = copy.deepcopy(base)
                argument[field] = value
                yield message.name, message.kind, field, argument
            if field in required:
                yield message.name, message.kind, field, {k: v for k, v in base.items() if k != field}


async def send(client, kind: str, name: str, argument):
    if kind == "command":
        return await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=name, arguments=[argument])
        )
    return await client.protocol.send_request_async(name, argument)


async def test_every_bad_argument_of_every_command_gets_one_invalid_params(client, tiny_model, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "total.py").write_text(SOURCE)
    uri = (root / "total.py").as_uri()
    settings = {
        "model": {"path": str(tiny_model)},
        "memory": {"sqlite_path": str(tmp_path / "m.sqlite3"), "journal_dir": str(tmp_path / "j")},
        "index": {"enabled": False},
    }
    await client.initialize_session(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(), initialization_options={"gemma": settings},
    ))
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=SOURCE)))

    tried: dict[str, int] = {}
    wrong: list[str] = []
    all_cases = list(cases(uri))
    # beyond the schema: a second argument, a range past the document's end, a 4 MB note
    all_cases += [
        (protocol.MEMORY_SEARCH, "command", None, None),  # filled below: two arguments
        (protocol.ACTION_RUN, "command", None,
         {"action": "fix", "uri": uri, "range": {"start": {"line": 500, "character": 0}, "end": {"line": 501, "character": 0}}}),
        (protocol.MEMORY_REMEMBER, "command", None,
         {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 900, "character": 0}}}),
        (protocol.PROMPT_RENDER, "command", None, {"template": "explain", "uri": uri,
                                                   "range": {"start": {"line": 7, "character": 0}, "end": RANGE["end"]}}),
        (protocol.MEMORY_REMEMBER, "command", "text", {"text": "x" * 4_000_000}),
    ]
    for name, kind, field, argument in all_cases:
        tried[name] = tried.get(name, 0) + 1
        told = len(client.messages)
        try:
            if argument is None:
                await client.workspace_execute_command_async(
                    lsp.ExecuteCommandParams(command=name, arguments=[{"query": "a"}, {"k": 1}]))
            else:
                await send(client, kind, name, argument)
            wrong.append(f"{name} accepted {field}={str(argument)[:80]}")
            continue
        except JsonRpcException as exc:
            message = str(exc.message if hasattr(exc, "message") else exc)
            if exc.code != INVALID_PARAMS or name not in message or (field and field not in message):
                wrong.append(f"{name} {field}={str(argument)[:60]}: {exc.code} {message[:160]}")
        assert len(client.messages) == told, f"{name}: a window message for bad input: {client.messages[-1]}"
        stats = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(command=protocol.MEMORY_STATS))
        assert stats["memories"] == 0, f"{name}: a bad argument stored a memory: {field}={str(argument)[:80]}"
    assert wrong == [], "\n".join(wrong)
    assert set(tried) == {m.name for m in protocol.MESSAGES if m.model is not protocol.NoParams} | {
        m.name for m in protocol.MESSAGES}  # every message tried, parameters or not
    assert sum(tried.values()) > 150
    print(f"{sum(tried.values())} bad arguments over {len(tried)} messages, all -32602")
