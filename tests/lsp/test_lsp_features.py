"""The server's feature objects, end to end over stdio: one failing feature is logged and told once
while the others keep serving; every command the server offers is named in protocol.py; settings
changed by didChangeConfiguration reach every service, memories included."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from gemma_lsp import protocol
from test_lsp_completion import CAPABILITIES, CURSOR, inline_params, open_doc

FAULTY = [sys.executable, str(Path(__file__).with_name("faulty_server.py"))]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=FAULTY))
async def faulty(lsp_client: LanguageClient):
    yield lsp_client
    if lsp_client.capabilities is not None:
        await lsp_client.shutdown_session()


def settings(model, tmp_path) -> dict:
    return {
        "model": {"path": str(model)},
        "completion": {"max_tokens": 8},
        "memory": {"sqlite_path": str(tmp_path / "a.sqlite3"), "journal_dir": str(tmp_path / "journal")},
    }


async def initialize(client: LanguageClient, model, tmp_path, root: Path | None = None) -> lsp.InitializeResult:
    return await client.initialize_session(
        lsp.InitializeParams(
            capabilities=CAPABILITIES, root_uri=root.as_uri() if root else None,
            initialization_options={"gemma": settings(model, tmp_path)},
        )
    )


async def execute(client: LanguageClient, name: str, argument: dict | None = None):
    params = lsp.ExecuteCommandParams(command=name, arguments=[argument] if argument is not None else None)
    return await client.workspace_execute_command_async(params)


async def test_a_failing_feature_is_told_once_and_the_others_keep_serving(faulty, tiny_model, tmp_path):
    await initialize(faulty, tiny_model, tmp_path)
    open_doc(faulty)
    open_doc(faulty, uri="file:///work/other.py")
    result = await faulty.text_document_inline_completion_async(inline_params())
    assert len(result.items) == 1 and result.items[0].range.start == CURSOR  # completion still works

    for n in (1, 2):
        with pytest.raises(JsonRpcException, match=rf"The faulty feature failed in test.faulty.boom: boom {n}\."):
            await execute(faulty, "test.faulty.boom", {"n": n})
        with pytest.raises(JsonRpcException, match=r"boom 1"):
            await execute(faulty, "test.faulty.boom", {"n": 1})
    stats = await execute(faulty, protocol.MEMORY_STATS)
    assert stats is not None  # another feature's command answers

    await asyncio.sleep(0.1)
    told = [m.message for m in faulty.messages]
    opened = [m for m in told if "failed in document_opened: broken on purpose" in m]
    assert len(opened) == 1, told  # two documents opened, one message
    assert len([m for m in told if "boom 1" in m]) == 1 and len([m for m in told if "boom 2" in m]) == 1
    assert all("Other features keep working" in m for m in opened)


async def test_every_command_the_server_offers_is_named_in_protocol(faulty, tiny_model, tmp_path):
    result = await initialize(faulty, tiny_model, tmp_path)
    offered = set(result.capabilities.execute_command_provider.commands)
    assert offered - {"test.faulty.boom"} == set(protocol.COMMANDS)


async def test_memory_settings_changed_by_the_client_take_effect(faulty, tiny_model, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "tax.py").write_text("def vat(amount):\n    return amount * 0.2\n")
    await initialize(faulty, tiny_model, tmp_path, root)
    await execute(faulty, protocol.MEMORY_REMEMBER, {"text": "VAT is twenty percent in the first store."})
    faulty.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={"gemma": {"memory": {"sqlite_path": str(tmp_path / "b.sqlite3")}}})
    )
    for _ in range(250):  # the new memory service starts and indexes the workspace in the background
        hits = await execute(faulty, protocol.MEMORY_SEARCH, {"query": "vat amount"})
        if hits and not any("first store" in h["text"] for h in hits):
            break
        await asyncio.sleep(0.02)
    found = await execute(faulty, protocol.MEMORY_SEARCH, {"query": "VAT twenty percent first store"})
    assert not any("first store" in h["text"] for h in found)  # the first store is no longer used
    assert any("def vat" in h["text"] for h in await execute(faulty, protocol.MEMORY_SEARCH, {"query": "vat amount"}))
    assert (tmp_path / "b.sqlite3").exists()
