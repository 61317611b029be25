"""Chat end to end over stdio: streamed answers, sessions that survive a restart, cancellation
within one token, and one clear error for each bad parameter."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from gemma_lsp import protocol
from gemma_lsp.lsp.client import EditorSession, file_uri

CODE = "def area(radius):\n    return 3.14159 * radius ** 2\n"


def session_for(tmp_path, model, **chat) -> EditorSession:
    root = tmp_path / "ws"
    root.mkdir(exist_ok=True)
    (root / "geometry.py").write_text(CODE)
    settings = {
        "model": {"path": str(model), "idle_unload_seconds": 0},
        "chat": {"max_tokens": 24, **chat},
        "memory": {"sqlite_path": str(tmp_path / "m.sqlite3"), "journal_dir": str(tmp_path / "j")},
        "index": {"enabled": False},
    }
    return EditorSession(settings=settings, root=root)


@pytest.fixture
async def editor(tmp_path, tiny_model):
    session = session_for(tmp_path, tiny_model)
    await session.start()
    yield session
    await session.stop()


async def test_a_chat_answer_streams_before_its_result(editor):
    result, pieces = await editor.chat("What does this module do?")
    assert len(pieces) >= 2 and "".join(pieces) == result["text"]
    assert all(p["session"] == result["session"] for p in editor.last_partial)  # a new session is named at once
    assert result["stopReason"] in ("max_tokens", "stop_token") and result["session"]
    stats = result["stats"]
    assert stats["tokens_generated"] > 0 and stats["ttft_ms"] <= stats["total_ms"]
    assert any(p.startswith("begin: Gemma is answering") for p in editor.progress)


async def test_a_session_keeps_its_turns_and_a_selection_reaches_the_prompt(editor, tmp_path):
    uri = file_uri(tmp_path / "ws" / "geometry.py")
    editor.open(uri, CODE)
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
    first, _ = await editor.chat("Explain this.", uri=uri, range=selection, template="explain")
    second, _ = await editor.chat("And in one word?", session=first["session"])
    assert second["session"] == first["session"]
    assert second["stats"]["prompt_tokens"] > first["stats"]["prompt_tokens"] // 2  # the first turn is in it
    history = await editor.request(protocol.CHAT_HISTORY, {"session": first["session"]})
    assert [t["role"] for t in history["turns"]] == ["user", "assistant", "user", "assistant"]
    assert history["turns"][0]["text"] == "Explain this." and not history["turns"][1]["cut"]
    sessions = await editor.request(protocol.CHAT_SESSIONS)
    assert sessions[0]["session"] == first["session"] and sessions[0]["turns"] == 4


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"message": ""}, "needs message: a non-empty string"),
        ({"message": "hi", "session": "nope"}, "there is no chat session 'nope'"),
        ({"message": "hi", "preset": "loud"}, "there is no sampler preset 'loud'"),
        ({"message": "hi", "template": "missing"}, "missing"),
        ({"message": "hi", "uri": "file:///not/open.py"}, "is not open"),
    ],
)
async def test_bad_parameters_get_one_clear_error_and_the_server_keeps_serving(editor, params, said):
    with pytest.raises(JsonRpcException, match=said):
        await editor.request(protocol.CHAT, params)
    result, _ = await editor.chat("still there?")
    assert result["text"]


async def test_a_message_longer_than_the_context_is_invalid_params_naming_the_limit(editor):
    # It used to answer -32603 (an internal error) for what is the user's text being too long.
    with pytest.raises(JsonRpcException, match=r"more than the model's context of \d+ \(model.n_ctx\)") as err:
        await editor.request(protocol.CHAT, {"message": "word " * 12_000})
    assert err.value.code == -32602
    result, _ = await editor.chat("still there?")
    assert result["text"]


async def test_a_range_outside_the_document_is_named(editor, tmp_path):
    uri = file_uri(tmp_path / "ws" / "geometry.py")
    editor.open(uri, CODE)
    outside = {"start": {"line": 40, "character": 0}, "end": {"line": 41, "character": 0}}
    with pytest.raises(JsonRpcException, match=r"outside .*geometry.py, which has 3 lines"):
        await editor.request(protocol.CHAT, {"message": "hi", "uri": uri, "range": outside})


async def test_cancelling_stops_within_one_token_and_keeps_the_partial_answer(tmp_path, tiny_model):
    editor = session_for(tmp_path, tiny_model, max_tokens=4000)
    await editor.start()
    try:
        first, _ = await editor.chat("Start a session.")
        session = first["session"]
        client = editor.client
        token = "cancel-me"
        editor.partial[token] = []
        request = asyncio.ensure_future(
            client.protocol.send_request_async(
                protocol.CHAT, {"message": "Write a long story.", "session": session, "partialResultToken": token}
            )
        )
        for _ in range(500):
            if len(editor.partial[token]) >= 3:
                break
            await asyncio.sleep(0.01)
        assert len(editor.partial[token]) >= 3  # it is streaming
        msg_id = next(reversed(client.protocol._request_futures))
        client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
        with pytest.raises(JsonRpcException, match="cancel"):
            await asyncio.wait_for(request, 10)
        stats = await editor.stats()
        assert stats["cancelled"] >= 1 and stats["max_tokens_after_cancel"] <= 1
        history = await editor.request(protocol.CHAT_HISTORY, {"session": session})
        last = history["turns"][-1]
        assert last["role"] == "assistant" and last["cut"] and last["text"]
    finally:
        await editor.stop()


async def test_a_session_survives_a_restart_of_the_server(tmp_path, tiny_model):
    editor = session_for(tmp_path, tiny_model)
    await editor.start()
    try:
        result, _ = await editor.chat("Remember this conversation.")
    finally:
        await editor.stop()
    again = session_for(tmp_path, tiny_model)
    await again.start()
    try:
        history = await again.request(protocol.CHAT_HISTORY, {"session": result["session"]})
        assert [t["text"] for t in history["turns"]] == ["Remember this conversation.", result["text"]]
        follow, _ = await again.chat("Go on.", session=result["session"])
        assert follow["session"] == result["session"]
        reset = await again.request(protocol.CHAT_RESET, {"session": result["session"]})
        assert reset["turns"] == 4
        with pytest.raises(JsonRpcException, match="there is no chat session"):
            await again.request(protocol.CHAT_HISTORY, {"session": result["session"]})
    finally:
        await again.stop()


async def test_the_chat_command_answers_with_work_done_progress(editor):
    result = await editor.execute(protocol.CHAT_COMMAND, {"message": "Say hello."})
    assert result["text"] and result["session"]
    assert any(p.startswith("begin: Gemma is answering") for p in editor.progress)


async def test_a_completion_during_a_chat_answers_from_its_own_kv_cache(tmp_path, tiny_model):
    editor = session_for(tmp_path, tiny_model, max_tokens=6000)
    await editor.start()
    try:
        uri = file_uri(tmp_path / "ws" / "work.py")
        text = "import os\n\n\ndef main():\n    "
        editor.open(uri, text)
        await editor.inline(uri, 4, 4)  # the completion's prompt is in its cache
        token = "long-chat"
        editor.partial[token] = []
        chat = asyncio.ensure_future(editor.request(protocol.CHAT, {"message": "Tell me everything.", "partialResultToken": token}))
        for _ in range(500):
            if editor.partial[token]:
                break
            await asyncio.sleep(0.01)
        assert editor.partial[token] and not chat.done()  # the chat answer is streaming
        editor.insert(uri, 4, 4, "x")
        await editor.inline(uri, 4, 5)
        stats = await editor.stats()
        assert stats["interleaved"] >= 1  # it ran between two chat tokens
        assert stats["completion"]["last"]["tokens_evaluated"] <= 4  # the chat did not evict its prefix
        result = await asyncio.wait_for(chat, 120)
        assert result["text"]
    finally:
        await editor.stop()

