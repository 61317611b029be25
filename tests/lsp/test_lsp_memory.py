"""Memories end to end: the real server over stdio, its commands, the workspace index, episodic memories."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_support import SERVER_COMMAND

CAPABILITIES = lsp.ClientCapabilities(
    text_document=lsp.TextDocumentClientCapabilities(
        inline_completion=lsp.InlineCompletionClientCapabilities(),
    ),
    window=lsp.WindowClientCapabilities(work_done_progress=True),
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield lsp_client
    if lsp_client.capabilities is not None:
        await lsp_client.shutdown_session()


@pytest.fixture
def workspace(tmp_path):
    root = tmp_path / "shop"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "invoice.py").write_text(
        "def compute_invoice_total(items):\n    return round(sum(i.price for i in items), 2)\n"
    )
    (root / ".env").write_text("API_KEY=do-not-index-me\n")
    return root


async def start(client, workspace, tiny_model, tmp_path):
    settings = {
        "model": {"path": str(tiny_model)},
        "completion": {"max_tokens": 8},
        "memory": {"sqlite_path": str(tmp_path / "memories.sqlite3"), "journal_dir": str(tmp_path / "journal")},
    }
    await client.initialize_session(
        lsp.InitializeParams(
            capabilities=CAPABILITIES, root_uri=workspace.as_uri(), initialization_options={"gemma": settings}
        )
    )


async def command(client, name, argument=None):
    args = [argument] if argument is not None else None
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(command=name, arguments=args))


async def wait_indexed(client):
    for _ in range(250):
        for reports in client.progress_reports.values():
            if reports and reports[0].title == "Indexing the workspace" and reports[-1].kind == "end":
                return reports
        await asyncio.sleep(0.02)
    raise AssertionError("the workspace was not indexed")


async def test_the_workspace_is_indexed_with_progress_and_secrets_stay_out(client, workspace, tiny_model, tmp_path):
    await start(client, workspace, tiny_model, tmp_path)
    reports = await wait_indexed(client)
    assert "1 files" in reports[-1].message
    hits = await command(client, "gemma.memory.search", {"query": "invoice total"})
    assert hits and "compute_invoice_total" in hits[0]["text"]
    assert not (await command(client, "gemma.memory.search", {"query": "API_KEY"}))


async def test_remember_search_forget_and_stats(client, workspace, tiny_model, tmp_path):
    await start(client, workspace, tiny_model, tmp_path)
    await wait_indexed(client)
    saved = await command(client, "gemma.memory.remember", {"text": "Prices are stored in cents.", "tags": ["billing"]})
    hits = await command(client, "gemma.memory.search", {"query": "how are prices stored", "k": 3})
    assert hits[0]["id"] == saved["id"] and hits[0]["tags"] == ["billing"]
    stats = await command(client, "gemma.memory.stats")
    assert stats["by_tier"]["long_term"] == 1 and stats["by_tier"]["semantic"] == 1
    assert (await command(client, "gemma.memory.forget", {"ids": [saved["id"]]}))["forgotten"] == 1
    assert all(h["id"] != saved["id"] for h in await command(client, "gemma.memory.search", {"query": "prices cents"}))


async def test_remembering_a_selection_and_bad_input_named(client, workspace, tiny_model, tmp_path):
    await start(client, workspace, tiny_model, tmp_path)
    uri = (workspace / "billing" / "invoice.py").as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=(workspace / "billing" / "invoice.py").read_text())))
    selection = {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 27}}
    saved = await command(client, "gemma.memory.remember", {"uri": uri, "range": selection, "tier": "short_term"})
    assert saved["tier"] == "short_term"
    with pytest.raises(JsonRpcException, match="gemma.memory.remember: tier: Input should be"):
        await command(client, "gemma.memory.remember", {"text": "x", "tier": "forever"})
    with pytest.raises(JsonRpcException, match="needs a non-empty query"):
        await command(client, "gemma.memory.search", {"query": "  "})
    assert (await command(client, "gemma.memory.stats"))["memories"] >= 1  # the server still serves


async def test_an_accepted_completion_becomes_an_episodic_memory(client, workspace, tiny_model, tmp_path):
    await start(client, workspace, tiny_model, tmp_path)
    uri = (workspace / "billing" / "new.py").as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="python", version=1, text="def f():\n    ")))
    result = await client.text_document_inline_completion_async(lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=1, character=4),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked)))
    item = result.items[0]
    assert item.command.command == "gemma.completion.accepted"
    await command(client, item.command.command, item.command.arguments[0])  # what the editor does on accept
    stats = await command(client, "gemma.memory.stats")
    assert stats["by_kind"]["accepted_completion"] == 1 and stats["by_tier"]["episodic"] == 1


async def test_a_completion_prompt_includes_a_retrieved_chunk(client, workspace, tiny_model, tmp_path):
    await start(client, workspace, tiny_model, tmp_path)
    await wait_indexed(client)
    uri = (workspace / "billing" / "report.py").as_uri()
    text = "from billing.invoice import compute_invoice_total\n\n\ndef monthly_report(items):\n    total = "
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=text)))
    position = lsp.Position(line=4, character=12)
    params = lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=position,
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked))
    for _ in range(50):  # the first retrieval may miss the time budget; it then serves the next request
        await client.text_document_inline_completion_async(params)
        last = (await client.protocol.send_request_async("gemma/stats", None)).completion.last
        if last.retrieved_chunks:
            break
        await asyncio.sleep(0.05)
    assert last.retrieved_chunks >= 1


async def test_a_redis_outage_degrades_memories_once_and_loses_nothing(client, workspace, tiny_model, tmp_path):
    import os
    import shutil

    from gemma_lsp.memory.redis_server import RedisServer, free_port

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: redis-server is not installed (make test installs it)")
        pytest.skip("redis-server is not installed")
    port = free_port()
    data = tmp_path / "redis-data"
    # Redis keeps its own data over the restart (append-only file); writes made while it is down
    # live in the server's journal and are replayed when it answers again.
    persist = ("--appendonly", "yes", "--appendfsync", "always")
    redis_server = RedisServer(binary, port, data, *persist).start()
    try:
        settings = {
            "model": {"path": str(tiny_model)},
            "memory": {"url": redis_server.url, "journal_dir": str(tmp_path / "journal"), "retry_interval": 0.2,
                       "connect_timeout": 0.3, "socket_timeout": 0.5},
            "index": {"enabled": False},
        }
        await client.initialize_session(lsp.InitializeParams(
            capabilities=CAPABILITIES, root_uri=workspace.as_uri(), initialization_options={"gemma": settings}))
        notes = [f"Release note {i}: the build pipeline step {i} is cached." for i in range(6)]
        for note in notes[:3]:
            await command(client, "gemma.memory.remember", {"text": note})
        redis_server.kill()
        for note in notes[3:]:
            await command(client, "gemma.memory.remember", {"text": note})  # journaled
        hits = await command(client, "gemma.memory.search", {"query": "release note pipeline", "k": 6})
        assert len(hits) == 6  # searches go on while Redis is down
        warnings = [m for m in client.messages if "degraded" in m.message]
        assert len(warnings) == 1  # said once
        redis_server = RedisServer(binary, port, data, *persist).start()
        await asyncio.sleep(0.3)
        stats = await command(client, "gemma.memory.stats")  # the next store call replays the journal
        assert stats["memories"] == 6 and not stats["degraded"]
        hits = await command(client, "gemma.memory.search", {"query": "release note pipeline", "k": 10})
        assert sorted(h["text"] for h in hits) == sorted(notes)  # every write, exactly once
    finally:
        redis_server.stop()
