"""End to end: the real server over stdio, driven by pytest-lsp as an editor would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_support import SERVER_COMMAND

URI = "file:///work/sample.py"
TEXT = 'import os\n\n\ndef greet(name: str) -> str:\n    """Say hello."""\n    return f"hello {name}"\n\n\ndef main():\n    \n'
CURSOR = lsp.Position(line=9, character=4)
WARM = lsp.Position(line=0, character=9)  # elsewhere: a repeat at CURSOR would come from the cache

# VS Code-like capabilities, including LSP 3.18 inline completion and work-done progress.
CAPABILITIES = lsp.ClientCapabilities(
    text_document=lsp.TextDocumentClientCapabilities(
        synchronization=lsp.TextDocumentSyncClientCapabilities(did_save=True, dynamic_registration=True),
        completion=lsp.CompletionClientCapabilities(
            completion_item=lsp.ClientCompletionItemOptions(snippet_support=True, insert_replace_support=True),
            context_support=True,
        ),
        inline_completion=lsp.InlineCompletionClientCapabilities(dynamic_registration=True),
    ),
    window=lsp.WindowClientCapabilities(work_done_progress=True),
    workspace=lsp.WorkspaceClientCapabilities(configuration=True, did_change_configuration=lsp.DidChangeConfigurationClientCapabilities()),
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield lsp_client
    if lsp_client.capabilities is not None:  # initialized by the test
        await lsp_client.shutdown_session()


async def start(client: LanguageClient, settings: dict[str, Any]) -> lsp.InitializeResult:
    result = await client.initialize_session(
        lsp.InitializeParams(capabilities=CAPABILITIES, initialization_options={"gemma": settings})
    )
    return result


def open_doc(client: LanguageClient, text: str = TEXT, uri: str = URI, version: int = 1) -> None:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=version, text=text))
    )


def inline_params(position: lsp.Position = CURSOR, uri: str = URI) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=position,
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
    )


async def stats(client: LanguageClient) -> Any:
    return await client.protocol.send_request_async("gemma/stats", None)


def settings_for(model, **completion) -> dict[str, Any]:
    return {"model": {"path": str(model), "n_ctx": 8192}, "completion": {"max_tokens": 12, **completion}}


async def test_initialize_advertises_inline_completion_and_completion(client, tiny_model):
    result = await start(client, settings_for(tiny_model))
    caps = result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert result.server_info.name == "gemma-lsp"


async def test_inline_completion_returns_text_with_an_exact_range(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    result = await client.text_document_inline_completion_async(inline_params())
    assert len(result.items) == 1
    item = result.items[0]
    assert item.insert_text.strip()
    assert item.range == lsp.Range(start=CURSOR, end=CURSOR)


async def test_completion_returns_one_item_carrying_the_suggestion(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    result = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=CURSOR)
    )
    assert len(result.items) == 1
    item = result.items[0]
    assert item.text_edit.new_text.strip()
    assert item.text_edit.range == lsp.Range(start=CURSOR, end=CURSOR)
    inline = await client.text_document_inline_completion_async(inline_params())
    assert inline.items[0].insert_text == item.text_edit.new_text  # one engine, one answer


async def test_edits_are_seen_and_positions_count_utf16(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client, text="x = '🎉'\n")
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=lsp.Position(line=0, character=8), end=lsp.Position(line=0, character=8)), text=" + y")],
        )
    )
    end = lsp.Position(line=0, character=12)  # the emoji is two UTF-16 code units
    result = await client.text_document_inline_completion_async(inline_params(end))
    assert result.items[0].range == lsp.Range(start=end, end=end)
    last = (await stats(client)).last
    assert last.prompt_tokens > 8  # prefix "x = '🎉' + y" and the FIM tokens reached the engine


async def test_cancel_request_answers_request_cancelled_and_stops_the_engine_within_one_token(client, tiny_model):
    await start(client, settings_for(tiny_model, max_tokens=3500, max_lines=10_000))
    open_doc(client)
    await client.text_document_inline_completion_async(inline_params(WARM))  # model loaded and warm
    request_id = "inline-to-cancel"
    future = asyncio.ensure_future(
        client.protocol.send_request_async(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(), msg_id=request_id)
    )
    await asyncio.sleep(0.2)  # the request is on the wire and the engine is generating
    client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=request_id))
    with pytest.raises(JsonRpcException) as err:
        await future
    assert err.value.code == lsp.LSPErrorCodes.RequestCancelled
    s = await stats(client)
    assert s.cancelled == 1
    assert s.last_cancel.sampled_before > 0  # cancelled mid-generation
    assert s.last_cancel.sampled_after <= 1  # and the engine stopped within one token
    # The server keeps serving.
    client_result = await client.text_document_inline_completion_async(inline_params())
    assert client_result is not None


async def test_a_newer_request_for_the_document_cancels_the_older_one(client, tiny_model):
    await start(client, settings_for(tiny_model, max_tokens=3500, max_lines=10_000))
    open_doc(client)
    await client.text_document_inline_completion_async(inline_params(WARM))
    older = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params()))
    await asyncio.sleep(0.2)
    newer = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=CURSOR)
    )
    assert newer.items  # the newer request is answered...
    with pytest.raises(JsonRpcException) as err:  # ...and the older one never delivers a result
        await older
    assert err.value.code == lsp.LSPErrorCodes.RequestCancelled
    s = await stats(client)
    assert s.superseded == 1 and s.last_cancel.sampled_after <= 1


async def test_a_missing_model_is_reported_once_and_the_server_still_answers(client, tmp_path):
    missing = tmp_path / "gemma-3-1b.gguf"
    await start(client, settings_for(missing))
    open_doc(client)
    message = await client.wait_for_notification(lsp.WINDOW_SHOW_MESSAGE)
    assert message.type == lsp.MessageType.Error
    assert f"Model file {missing} does not exist." in message.message
    for _ in range(2):
        result = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params()), 10)
        assert not result.items
        completion = await client.text_document_completion_async(
            lsp.CompletionParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=CURSOR)
        )
        assert not completion.items
    errors = [m for m in client.messages if m.type == lsp.MessageType.Error]
    assert len(errors) == 1  # said once, not on every keystroke


async def test_model_loading_reports_work_done_progress(client, tiny_model):
    await start(client, settings_for(tiny_model))
    for _ in range(200):
        reports = list(client.progress_reports.values())
        if reports and reports[0] and reports[0][-1].kind == "end":  # created before it begins
            break
        await asyncio.sleep(0.02)
    (report,) = client.progress_reports.values()
    assert report[0].kind == "begin" and "gemma3-tiny.gguf" in report[0].title
    assert report[-1].kind == "end" and "gemma3" in report[-1].message


async def test_an_invalid_setting_is_named_and_the_previous_settings_stay(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={"gemma": {"completion": {"max_tokens": -5}}})
    )
    message = await client.wait_for_notification(lsp.WINDOW_SHOW_MESSAGE)
    assert "completion.max_tokens" in message.message and "previous settings stay" in message.message
    result = await client.text_document_inline_completion_async(inline_params())
    assert (await stats(client)).last.tokens_generated <= 12
    assert result.items


async def test_changing_the_model_path_reloads(client, tiny_model, model_factory):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    await client.text_document_inline_completion_async(inline_params())
    other = model_factory("gemma2")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"gemma": {"model": {"path": str(other)}}}))
    for _ in range(200):
        s = await stats(client)
        if s.loaded and s.model.architecture == "gemma2":
            break
        await asyncio.sleep(0.02)
    assert s.model.architecture == "gemma2" and s.loads == 2
    assert (await client.text_document_inline_completion_async(inline_params())).items


async def test_no_message_is_lost_while_the_model_loads(client, model_factory):
    """Loading must never redirect the process's stdout (the LSP channel), even for a moment."""
    big_vocab = model_factory("gemma3", "tiny", 262_144)  # ~74 MB: a load that takes a while
    await start(client, settings_for(big_vocab))
    answered = 0
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        s = await asyncio.wait_for(stats(client), 5)  # a lost answer would time out here
        answered += 1
        if s.loaded:
            break
        await asyncio.sleep(0.002)
    assert s.loaded and answered > 1


def type_text(client: LanguageClient, at: lsp.Position, text: str, version: int) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[lsp.TextDocumentContentChangePartial(range=lsp.Range(start=at, end=at), text=text)],
        )
    )


async def test_typing_the_start_of_a_suggestion_serves_the_rest_without_the_engine(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    first = (await client.text_document_inline_completion_async(inline_params())).items[0].insert_text
    assert len(first) > 3
    type_text(client, CURSOR, first[:2], version=2)
    moved = lsp.Position(line=CURSOR.line, character=CURSOR.character + 2)
    second = await client.text_document_inline_completion_async(inline_params(moved))
    assert second.items[0].insert_text == first[2:]
    assert second.items[0].range == lsp.Range(start=moved, end=moved)
    s = await stats(client)
    assert s.completion.last.source == "type_ahead" and s.completion.type_ahead_hits == 1
    assert s.completion.engine == 1  # the engine ran once, for the first request only


async def test_returning_to_an_earlier_text_is_served_from_the_cache(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    first = await client.text_document_inline_completion_async(inline_params())
    type_text(client, CURSOR, "q", version=2)  # not the suggestion's first character
    await client.text_document_inline_completion_async(
        inline_params(lsp.Position(line=CURSOR.line, character=CURSOR.character + 1)))
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=3),
            content_changes=[lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=CURSOR, end=lsp.Position(line=CURSOR.line, character=CURSOR.character + 1)),
                text="")],
        )
    )
    again = await client.text_document_inline_completion_async(inline_params())
    assert again.items[0].insert_text == first.items[0].insert_text
    s = await stats(client)
    assert s.completion.last.source == "cache" and s.completion.cache_hits == 1 and s.completion.engine == 2


OTHER_URI = "file:///work/helpers.py"
OTHER = "def distinctive_helper(alpha, beta):\n    return alpha * beta + 42\n"


async def test_other_open_files_reach_the_prompt_as_extra_context(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    await client.text_document_inline_completion_async(inline_params())
    alone = (await stats(client)).completion.last
    assert alone.extra_chunks == 0  # the file being completed is never its own extra context
    open_doc(client, text=OTHER, uri=OTHER_URI)
    type_text(client, CURSOR, "z", version=2)
    moved = lsp.Position(line=CURSOR.line, character=CURSOR.character + 1)
    await client.text_document_inline_completion_async(inline_params(moved))
    with_other = (await stats(client)).completion.last
    assert with_other.extra_chunks == 1
    assert with_other.prompt_tokens > alone.prompt_tokens + 10


async def test_new_extra_context_is_evaluated_in_the_background_before_the_next_keystroke(client, tiny_model):
    await start(client, settings_for(tiny_model))
    open_doc(client)
    await client.text_document_inline_completion_async(inline_params())
    open_doc(client, text=OTHER, uri=OTHER_URI)  # the ring changes while the user is idle
    for _ in range(250):
        s = await stats(client)
        if s.prefetched:
            break
        await asyncio.sleep(0.02)
    assert s.prefetched == 1
    type_text(client, CURSOR, "z", version=2)
    moved = lsp.Position(line=CURSOR.line, character=CURSOR.character + 1)
    await client.text_document_inline_completion_async(inline_params(moved))
    last = (await stats(client)).completion.last
    assert last.extra_chunks == 1
    assert last.tokens_evaluated <= 4  # the new chunk was already in the KV cache


def set_completion(client: LanguageClient, **completion: Any) -> None:
    client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={"gemma": {"completion": completion}})
    )


async def completion_text(client: LanguageClient) -> str:
    result = await client.text_document_inline_completion_async(inline_params())
    return result.items[0].insert_text if result.items else ""


async def test_the_sampler_preset_in_config_changes_the_text_and_a_seed_reproduces_it(client, tiny_model):
    await start(client, settings_for(tiny_model, max_tokens=24, preset="greedy"))
    open_doc(client)
    greedy = await completion_text(client)
    set_completion(client, preset="creative", seed=1)
    first = await completion_text(client)
    set_completion(client, preset="creative", seed=2)
    other_seed = await completion_text(client)
    set_completion(client, preset="creative", seed=1)
    again = await completion_text(client)
    assert first != greedy  # the preset changed what the model wrote
    assert other_seed != first  # so did the seed
    assert again == first  # and the same seed wrote the same text again
    assert (await stats(client)).completion.engine == 4  # each answer came from the engine, not the cache
