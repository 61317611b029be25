"""The composition layer: every service built once from settings, and a settings change pushed to
all of them (memory and index included), on the real engine and the embedded store."""

from __future__ import annotations

import pytest

from gemma_lsp.app import Services
from gemma_lsp.config import Settings, apply_layer
from gemma_lsp.errors import ModelUnavailable
from gemma_lsp.prompts import PromptInputs


def settings_for(tmp_path, model, **layers) -> Settings:
    base = {
        "model": {"path": str(model), "n_ctx": 2048, "idle_unload_seconds": 0},
        "completion": {"prefix_tokens": 256, "suffix_tokens": 64, "extra_context_tokens": 256, "max_tokens": 8},
        "memory": {"sqlite_path": str(tmp_path / "a.sqlite3"), "journal_dir": str(tmp_path / "journal")},
    }
    return apply_layer(Settings(), {**base, **layers})


@pytest.fixture
async def services(tmp_path, tiny_model):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "billing.py").write_text("def invoice_total(items):\n    return sum(i.price for i in items)\n")
    s = Services.from_settings(settings_for(tmp_path, tiny_model), root)
    await s.start_memory()
    yield s
    await s.close()


async def test_every_service_is_built_from_the_settings(services, tmp_path):
    assert services.engine.settings.n_ctx == 2048
    assert services.memory is not None and services.memory.root == (tmp_path / "ws").resolve()
    assert services.memory.settings.sqlite_path == tmp_path / "a.sqlite3"
    assert "explain" in {t["name"] for t in services.prompts.status()}
    suggestion = await services.completions.suggest("file:///ws/x.py", "def f():\n    ", 13, path="x.py")
    assert services.engine.loaded and services.completions.stats.engine == 1
    assert suggestion is None or suggestion.text


async def test_memory_settings_changed_later_reach_a_new_memory_service(services, tmp_path):
    await services.memory.remember("Invoices are in cents.")
    old = services.memory
    changed = apply_layer(services.settings, {"memory": {"sqlite_path": str(tmp_path / "b.sqlite3")}})
    applied = await services.apply(changed)
    assert applied.memory and not applied.model and not applied.prompts
    assert services.memory is not old and services.memory.settings.sqlite_path == tmp_path / "b.sqlite3"
    await services.start_memory()
    assert await services.memory.search("Invoices cents") == []  # the new store is empty
    await services.memory.remember("Refunds are negative invoices.")
    assert (tmp_path / "b.sqlite3").exists()


async def test_the_completion_retriever_follows_the_current_memory_service(services, tmp_path):
    changed = apply_layer(services.settings, {"memory": {"sqlite_path": str(tmp_path / "c.sqlite3")}})
    await services.apply(changed)
    await services.start_memory()
    await services.memory.remember("def refund_total(items):\n    return -sum(i.price for i in items)\n")
    chunks = await services._retrieve("refund_total items price", 200)
    assert any("refund_total" in c.text for c in chunks)


async def test_a_model_change_keeps_the_loaded_model_serving_until_the_new_one_has_loaded(
    services, model_factory, tmp_path
):
    await services.engine.load()
    other = model_factory("gemma2")
    applied = await services.apply(apply_layer(services.settings, {"model": {"path": str(other)}}))
    assert applied.model and not applied.memory
    assert services.engine.loaded and services.engine.info.architecture == "gemma3"  # still serving
    info = await services.engine.load()
    assert info.architecture == "gemma2" and services.engine.stats.unloads == 1

    missing = tmp_path / "nope.gguf"
    assert (await services.apply(apply_layer(services.settings, {"model": {"path": str(missing)}}))).model
    with pytest.raises(ModelUnavailable, match=rf"{missing} does not exist\. {other.name} keeps serving\.$"):
        await services.engine.load()
    assert services.engine.info.architecture == "gemma2" and services.engine.settings.path == other
    suggestion = await services.completions.suggest("file:///ws/x.py", "def f():\n    ", 13, path="x.py")
    assert suggestion is None or suggestion.text  # answered by gemma2, no error
    assert services.engine.stats.completed >= 1
    # The same settings again (any other key changed): the path that failed is not tried again.
    assert not (await services.apply(apply_layer(services.settings, {"completion": {"max_tokens": 5}}))).model


async def test_a_model_change_during_the_first_load_waits_for_it_and_keeps_it_serving(services, tmp_path):
    # The editor sends a settings change while the first model is still loading (right after
    # initialized): a model that loads fine must not be unloaded for one that cannot load.
    import asyncio

    loading = asyncio.ensure_future(services.engine.load())
    await asyncio.sleep(0)
    missing = tmp_path / "nope.gguf"
    assert (await services.apply(apply_layer(services.settings, {"model": {"path": str(missing)}}))).model
    await loading
    with pytest.raises(ModelUnavailable, match="keeps serving"):
        await services.engine.load()
    assert services.engine.loaded and services.engine.info.architecture == "gemma3"
    assert services.engine.stats.unloads == 0


async def test_unchanged_settings_change_nothing(services):
    old_memory, old_prompts = services.memory, services.prompts
    applied = await services.apply(services.settings.model_copy())
    assert not (applied.model or applied.memory or applied.prompts)
    assert services.memory is old_memory and services.prompts is old_prompts


async def test_new_template_folders_give_a_new_library(services, tmp_path):
    mine = tmp_path / "prompts"
    mine.mkdir()
    (mine / "review.jinja").write_text("Review {{ selection }}\n")
    applied = await services.apply(apply_layer(services.settings, {"prompts": {"dirs": [str(mine)]}}))
    assert applied.prompts
    rendered = await services.render("review", PromptInputs(selection="x = 1"))
    assert rendered.text == "Review x = 1\n"


async def test_render_fills_in_memories_and_can_leave_them_out(services):
    await services.memory.remember("Totals are rounded half to even.", tags=["billing"])
    inputs = PromptInputs(selection="def invoice_total(items): ...", question="How are totals rounded?")
    with_memories = await services.render("ask", inputs)
    assert "rounded half to even" in with_memories.rag_context
    without = await services.render("ask", inputs, memories=False)
    assert without.rag_context == ""


async def test_services_without_memories(tmp_path, tiny_model):
    s = Services.from_settings(settings_for(tmp_path, tiny_model), None, memory=False)
    try:
        assert s.memory is None and await s.start_memory() == 0
        assert await s._retrieve("anything", 100) == []
        applied = await s.apply(apply_layer(s.settings, {"memory": {"sqlite_path": str(tmp_path / "z.sqlite3")}}))
        assert not applied.memory and s.memory is None
    finally:
        await s.close()


async def test_an_embedder_that_cannot_load_is_told_once_and_search_stays_lexical(tmp_path, tiny_model):
    told = []
    bad = tmp_path / "not-a-model.gguf"
    bad.write_text("hello")
    settings = settings_for(tmp_path, tiny_model)
    settings = apply_layer(settings, {"memory": {"embedding_model": str(bad)}})
    s = Services.from_settings(settings, tmp_path, notify=lambda level, message: told.append((level, message)))
    try:
        assert len(told) == 1 and told[0][0] == "warning"
        assert "not a GGUF file" in told[0][1] and "lexical search only" in told[0][1]
    finally:
        await s.close()


async def test_a_chat_prompt_leaves_out_its_own_session_s_turns_as_memories(services):
    from gemma_lsp.app import MemoryTurns
    from gemma_lsp.chat import Turn

    turns = MemoryTurns(services.memory)
    await turns.save("mine", 0, Turn("user", "How are invoice totals rounded in this project?"))
    await turns.save("other", 0, Turn("user", "Which invoice fields are optional?"))
    inputs = PromptInputs(question="invoice totals", conversation="mine")
    rendered = await services.render("chat", inputs)
    assert "Which invoice fields are optional?" in rendered.rag_recent  # another session's turn helps
    assert "How are invoice totals rounded" not in rendered.rag_recent + rendered.rag_context  # its own: in the history
    everything = await services.render("chat", PromptInputs(question="invoice totals"))
    assert "How are invoice totals rounded" in everything.rag_recent  # without a session nothing is left out
