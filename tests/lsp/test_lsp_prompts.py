"""Prompt templates end to end: the real server over stdio renders templates with memories in them."""

from __future__ import annotations

import os

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_support import SERVER_COMMAND
from test_lsp_memory import CAPABILITIES, command, wait_indexed


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield lsp_client
    if lsp_client.capabilities is not None:
        await lsp_client.shutdown_session()


INVOICE = "def compute_invoice_total(items):\n    return round(sum(i.price for i in items), 2)\n"
CHECKOUT = "from billing.invoice import compute_invoice_total\n\n\ndef checkout(cart):\n    return compute_invoice_total(cart.items)\n"


async def start(client, tmp_path, tiny_model, prompt_dir):
    root = tmp_path / "shop"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "invoice.py").write_text(INVOICE)
    settings = {
        "model": {"path": str(tiny_model)},
        "memory": {"sqlite_path": str(tmp_path / "memories.sqlite3"), "journal_dir": str(tmp_path / "journal")},
        "prompts": {"dirs": [str(prompt_dir)]},
    }
    await client.initialize_session(lsp.InitializeParams(
        capabilities=CAPABILITIES, root_uri=root.as_uri(), initialization_options={"gemma": settings}))
    await wait_indexed(client)
    uri = (root / "checkout.py").as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=CHECKOUT)))
    return uri


async def test_a_template_receives_retrieved_code_notes_and_recent_memories(client, tmp_path, tiny_model):
    uri = await start(client, tmp_path, tiny_model, tmp_path / "no-such-folder")
    await command(client, "gemma.memory.remember", {"text": "Invoice totals are rounded to cents.", "tags": ["billing"]})
    await command(client, "gemma.completion.accepted", {"uri": uri, "text": "return compute_invoice_total(cart.items)"})
    selection = {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}
    rendered = await command(client, "gemma.prompt.render", {
        "template": "ask", "uri": uri, "range": selection, "question": "Why is the invoice total rounded?"})
    assert "# billing/invoice.py:1-2\ndef compute_invoice_total" in rendered["rag_context"]
    assert "# note (billing)\nInvoice totals are rounded to cents." in rendered["rag_context"]
    assert "accepted_completion" in rendered["rag_recent"] and "checkout.py" in rendered["rag_recent"]
    text = rendered["text"]
    assert rendered["rag_context"] in text and rendered["rag_recent"] in text
    assert "python code from checkout.py (lines 4-5)" in text
    assert "```python\ndef checkout(cart):\n    return compute_invoice_total(cart.items)\n```" in text
    listed = await command(client, "gemma.prompt.list")
    assert {"ask", "chat", "explain", "fix", "document", "test"} <= {t["name"] for t in listed}


async def test_edited_templates_are_used_at_once_and_broken_ones_are_named(client, tmp_path, tiny_model):
    prompts = tmp_path / "my-prompts"
    prompts.mkdir()
    template = prompts / "review.jinja"
    template.write_text("Review {{ path }}:\n{{ selection }}\n")
    uri = await start(client, tmp_path, tiny_model, prompts)
    whole = {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}
    first = await command(client, "gemma.prompt.render", {"template": "review", "uri": uri, "range": whole})
    assert first["text"].startswith("Review checkout.py:\nfrom billing.invoice")
    template.write_text("Please review {{ language }} {{ path }}.\n")
    st = template.stat()
    os.utime(template, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = await command(client, "gemma.prompt.render", {"template": "review", "uri": uri, "range": whole})
    assert second["text"] == "Please review python checkout.py.\n"
    template.write_text("Review {{ selction }}\n")
    with pytest.raises(JsonRpcException, match=r"review.jinja uses selction, which no prompt receives"):
        await command(client, "gemma.prompt.render", {"template": "review", "uri": uri})
    with pytest.raises(JsonRpcException, match="gemma.prompt.render: template: Field required"):
        await command(client, "gemma.prompt.render", {"uri": uri})
    with pytest.raises(JsonRpcException, match="is not open"):
        await command(client, "gemma.prompt.render", {"template": "explain", "uri": uri + "x"})
    # the built-in templates still serve
    explained = await command(client, "gemma.prompt.render", {"template": "explain", "text": "x = 1"})
    assert "```\nx = 1\n```" in explained["text"]
