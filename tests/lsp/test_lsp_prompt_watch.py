"""The template watcher through the real server: a template saved broken is a diagnostic within a
second, a fixed one clears it, and the watcher does not slow the server's exit."""

from __future__ import annotations

import asyncio
import time

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_support import SERVER_COMMAND
from test_lsp_memory import CAPABILITIES


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield lsp_client
    if lsp_client.capabilities is not None and not getattr(lsp_client, "closed_by_test", False):
        await lsp_client.shutdown_session()


async def start(client, tmp_path, tiny_model, prompts):
    root = tmp_path / "ws"
    root.mkdir()
    settings = {
        "model": {"path": str(tiny_model)},
        "memory": {"sqlite_path": str(tmp_path / "m.sqlite3"), "journal_dir": str(tmp_path / "journal")},
        "index": {"enabled": False},
        "prompts": {"dirs": [str(prompts)]},
    }
    await client.initialize_session(lsp.InitializeParams(
        capabilities=CAPABILITIES, root_uri=root.as_uri(), initialization_options={"gemma": settings}))
    client.initialized(lsp.InitializedParams())


def open_file(client, path):
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=path.as_uri(), language_id="jinja", version=1, text=path.read_text())))


async def diagnostics_for(client, uri, want_any: bool, timeout: float = 5.0) -> tuple[list, float]:
    """The file's diagnostics once they are (non-)empty as wanted, and how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = client.diagnostics.get(uri)
        if found is not None and bool(found) == want_any:
            return list(found), time.monotonic() - started
        await asyncio.sleep(0.005)
    raise AssertionError(f"no {'diagnostic' if want_any else 'clearing'} for {uri} within {timeout} s: {client.diagnostics}")


async def test_a_template_saved_broken_is_a_diagnostic_within_a_second_and_clears_when_fixed(client, tmp_path, tiny_model):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    review = prompts / "review.jinja"
    review.write_text('+++\ndescription = "Review"\n+++\nReview {{ path }}:\n{{ selection }}\n')
    await start(client, tmp_path, tiny_model, prompts)
    open_file(client, review)
    uri = review.as_uri()
    await asyncio.sleep(0.3)  # the watcher is up before the save
    assert not client.diagnostics.get(uri)  # a good template: nothing said

    review.write_text('+++\ndescription = "Review"\n+++\nReview {{ path }}:\n{% if selection %}\n{{ selection }}\n')
    found, took = await diagnostics_for(client, uri, want_any=True)
    print(f"broken template -> diagnostic: {took * 1000:.0f} ms")
    assert took < 1.0, f"the diagnostic took {took:.2f} s"
    assert len(found) == 1 and found[0].range.start.line == 5  # line 6 of the file, after the front matter
    assert found[0].severity == lsp.DiagnosticSeverity.Error
    assert "review.jinja, line 6: Unexpected end of template" in found[0].message

    review.write_text("Review {{ selction }}\n")  # another problem: an unknown variable, on its line
    await asyncio.sleep(0.05)
    started = time.monotonic()
    while "selction" not in client.diagnostics[uri][0].message and time.monotonic() - started < 2:
        await asyncio.sleep(0.005)
    assert "uses selction, which no prompt receives" in client.diagnostics[uri][0].message
    assert client.diagnostics[uri][0].range.start.line == 0

    review.write_text("Review {{ path }}:\n{{ selection }}\n")
    _, took = await diagnostics_for(client, uri, want_any=False)
    print(f"fixed template -> diagnostics cleared: {took * 1000:.0f} ms")
    assert took < 1.0


async def test_a_template_broken_while_closed_is_reported_when_opened_and_exit_stays_fast(client, tmp_path, tiny_model):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    await start(client, tmp_path, tiny_model, prompts)
    await asyncio.sleep(0.3)
    broken = prompts / "later.jinja"
    broken.write_text("{% for x in selection %}\n")  # created while no editor has it open
    await asyncio.sleep(0.5)
    assert broken.as_uri() not in client.diagnostics
    open_file(client, broken)
    found, _ = await diagnostics_for(client, broken.as_uri(), want_any=True)
    assert "later.jinja, line 1: Unexpected end of template" in found[0].message
    other = tmp_path / "notes.jinja"  # not in a template folder: not checked
    other.write_text("{% if %}\n")
    open_file(client, other)
    await asyncio.sleep(0.3)
    assert other.as_uri() not in client.diagnostics

    started = time.monotonic()
    await client.shutdown_session()  # shutdown, exit, and the process gone
    client.closed_by_test = True
    print(f"shutdown + exit: {(time.monotonic() - started) * 1000:.0f} ms")
    assert time.monotonic() - started < 3.0
