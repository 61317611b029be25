"""Prompt templates: the built-in ones, checks at load, hot reload, overrides, and memories in them."""

from __future__ import annotations

import os

import pytest

from gemma_lsp.config import Settings
from gemma_lsp.memory import Kind, MemorySettings, Tier
from gemma_lsp.memory.service import MemoryService
from gemma_lsp.prompts import (
    VARIABLES,
    PromptError,
    PromptInputs,
    PromptLibrary,
    builtin_prompt_dir,
    library_for,
    render_prompt,
)

BUILT_IN = ("ask", "chat", "document", "explain", "fix", "test")


def write(path, text, bump_ns=0):
    """Write ``text``; ``bump_ns`` moves the mtime forward so a same-size edit is seen as one."""
    path.write_text(text)
    if bump_ns:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump_ns))


def test_every_built_in_template_loads_and_uses_the_retrieved_memories():
    library = PromptLibrary([builtin_prompt_dir()])
    status = {s["name"]: s for s in library.status()}
    assert set(BUILT_IN) <= set(status)
    for name in BUILT_IN:
        assert status[name]["error"] is None, status[name]["error"]
        assert status[name]["description"]
        assert "rag_context" in status[name]["variables"], name
    assert "rag_recent" in status["chat"]["variables"] and "rag_recent" in status["ask"]["variables"]


def test_rendering_fills_every_variable_and_leaves_no_template_syntax():
    library = PromptLibrary([builtin_prompt_dir()])
    values = {name: f"<{name}>" for name in VARIABLES}
    for name in BUILT_IN:
        text = library.render(name, values)
        assert "{{" not in text and "{%" not in text and "+++" not in text
        for variable in library.get(name).variables:
            assert f"<{variable}>" in text, (name, variable)


def test_an_unknown_variable_is_named_when_the_template_loads(tmp_path):
    write(tmp_path / "mine.jinja", "Explain {{ selecton }} in {{ language }}\n")
    with pytest.raises(PromptError) as err:
        PromptLibrary([tmp_path]).get("mine")
    assert str(tmp_path / "mine.jinja") in str(err.value) and "uses selecton, which no prompt receives" in str(err.value)


def test_a_syntax_error_names_the_file_line_after_the_front_matter(tmp_path):
    write(tmp_path / "broken.jinja", '+++\ndescription = "x"\n+++\nline one\n{% if selection %}\nno end\n')
    library = PromptLibrary([tmp_path])
    with pytest.raises(PromptError, match=r"broken.jinja, line 6: Unexpected end of template"):
        library.get("broken")
    assert library.status()[0]["error"].startswith(str(tmp_path / "broken.jinja"))


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ('+++\ndescription = "x"\n', "never closed"),
        ("+++\ndescription = \n+++\n", "not valid TOML"),
        ('+++\ncolour = "red"\n+++\n', "unknown front matter key 'colour'"),
        ("+++\nrag_budget_tokens = -5\n+++\n", "rag_budget_tokens must be a whole number from 0 to 65536, got -5"),
        ("+++\ndescription = 3\n+++\n", "description must be a string"),
    ],
)
def test_bad_front_matter_gets_one_sentence(tmp_path, front, message):
    write(tmp_path / "t.jinja", front + "{{ selection }}\n")
    with pytest.raises(PromptError, match=message):
        PromptLibrary([tmp_path]).get("t")


def test_missing_templates_and_bad_names_are_named(tmp_path):
    write(tmp_path / "one.jinja", "x\n")
    library = PromptLibrary([tmp_path])
    with pytest.raises(PromptError, match=r"There is no prompt template 'two' in .* \(templates: one\)"):
        library.get("two")
    with pytest.raises(PromptError, match="is not a template name"):
        library.get("../etc/passwd")


def test_an_edited_template_is_used_at_once_and_a_deleted_one_is_gone(tmp_path):
    path = tmp_path / "note.jinja"
    write(path, "first {{ selection }}\n")
    library = PromptLibrary([tmp_path])
    assert library.render("note", {"selection": "x"}) == "first x\n"
    write(path, "again {{ selection }}\n", bump_ns=1_000_000)  # same size: the mtime tells
    assert library.render("note", {"selection": "x"}) == "again x\n"
    write(path, "{% if %}\n", bump_ns=2_000_000)
    with pytest.raises(PromptError, match="line 1"):
        library.get("note")
    write(path, "fixed {{ selection }}\n", bump_ns=3_000_000)
    assert library.render("note", {"selection": "y"}) == "fixed y\n"
    path.unlink()
    assert "note" not in library.names()


def test_a_users_folder_overrides_a_built_in_template_by_name(tmp_path):
    write(tmp_path / "explain.jinja", "My own: {{ selection }}\n")
    settings = Settings.model_validate({"prompts": {"dirs": [str(tmp_path)]}})
    library = library_for(settings.prompts)
    assert library.render("explain", {"selection": "x"}) == "My own: x\n"
    assert library.get("fix").path.parent == builtin_prompt_dir()


def test_the_sandbox_keeps_templates_away_from_python(tmp_path):
    write(tmp_path / "evil.jinja", "{{ selection.__class__.__mro__ }}\n")
    with pytest.raises(PromptError, match="evil.jinja"):
        PromptLibrary([tmp_path]).render("evil", {"selection": "x"})


@pytest.fixture
async def memories(tmp_path):
    root = tmp_path / "ws"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "invoice.py").write_text(
        "def compute_invoice_total(items):\n    return round(sum(i.price for i in items), 2)\n"
    )
    service = MemoryService(MemorySettings(sqlite_path=tmp_path / "m.sqlite3", journal_dir=tmp_path / "j"), root=root)
    await service.start()
    await service.index_workspace()
    yield service
    await service.close()


async def test_templates_receive_retrieved_and_recent_memories(memories):
    await memories.remember("Invoice totals are rounded to cents.", tags=["billing"])
    await memories.remember("total = compute_invoice_total(cart)", tier=Tier.episodic, kind=Kind.accepted_completion)
    inputs = PromptInputs(
        selection="compute_invoice_total(order.items)", question="Why is the invoice total rounded?",
        path="app/checkout.py", language="python", start_line=4, end_line=4,
    )
    rendered = await render_prompt(PromptLibrary([builtin_prompt_dir()]), "ask", inputs, memories.context_for)
    assert "# billing/invoice.py:1-2" in rendered.rag_context and "def compute_invoice_total" in rendered.rag_context
    assert "note (billing)" in rendered.rag_context
    assert "accepted_completion" in rendered.rag_recent and "compute_invoice_total(cart)" in rendered.rag_recent
    assert rendered.rag_context in rendered.text and rendered.rag_recent in rendered.text
    assert "from app/checkout.py (line 4)" in rendered.text and rendered.text.rstrip().endswith("rounded?")


async def test_the_code_a_prompt_shows_is_not_repeated_as_its_context(memories):
    await memories.remember("Invoice totals are rounded to cents, half to even.", tags=["billing"])
    source = memories.root / "billing" / "invoice.py"
    inputs = PromptInputs(
        selection=source.read_text(), path="billing/invoice.py", language="python", start_line=1, end_line=2,
        uri=source.as_uri(),
    )
    library = PromptLibrary([builtin_prompt_dir()])
    rendered = await render_prompt(library, "explain", inputs, memories.context_for)
    assert "billing/invoice.py:1-2" not in rendered.rag_context  # the selection itself
    assert "# note (billing)\nInvoice totals are rounded to cents" in rendered.rag_context  # no longer crowded out
    elsewhere = await render_prompt(library, "explain", PromptInputs(selection=inputs.selection), memories.context_for)
    assert "# billing/invoice.py:1-2" in elsewhere.rag_context


async def test_front_matter_budgets_limit_the_memories(memories, tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    write(folder / "tiny.jinja", "+++\nrag_budget_tokens = 4\n+++\n[{{ rag_context }}]\n")
    write(folder / "roomy.jinja", "[{{ rag_context }}]\n")
    library = PromptLibrary([folder])
    inputs = PromptInputs(question="invoice total")
    assert (await render_prompt(library, "tiny", inputs, memories.context_for)).text == "[]\n"
    assert "compute_invoice_total" in (await render_prompt(library, "roomy", inputs, memories.context_for)).text


async def test_a_template_without_memory_variables_does_not_search(tmp_path):
    write(tmp_path / "plain.jinja", "{{ selection }}\n")
    calls = []

    async def context(query, rag, recent, exclude=None):
        calls.append(query)
        return {"rag_context": "", "rag_recent": ""}

    rendered = await render_prompt(PromptLibrary([tmp_path]), "plain", PromptInputs(selection="x"), context)
    assert rendered.text == "x\n" and calls == []
