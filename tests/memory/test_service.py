"""The memory service on the embedded store: remember, search, forget, index, export/import."""

from __future__ import annotations

import json

import pytest

from gemma_lsp.memory import MemorySettings, Tier
from gemma_lsp.memory.service import MemoryService


@pytest.fixture
async def service(tmp_path):
    root = tmp_path / "ws"
    (root / "app").mkdir(parents=True)
    (root / "app" / "billing.py").write_text("def compute_invoice_total(items):\n    return sum(i.price for i in items)\n")
    (root / "app" / "users.py").write_text("class UserRepository:\n    def find_by_email(self, email):\n        ...\n")
    s = MemoryService(MemorySettings(sqlite_path=tmp_path / "m.sqlite3", journal_dir=tmp_path / "j"), root=root)
    await s.start()
    yield s
    await s.close()


async def test_remembered_notes_are_found_and_forgotten(service):
    note = await service.remember("Invoices are rounded to cents with banker's rounding.", tags=["billing"])
    await service.remember("The staging database is reset every night.")
    hits = await service.search("how are invoice totals rounded?")
    assert hits and hits[0].id == note.id
    assert await service.forget([note.id]) == 1
    assert all(h.id != note.id for h in await service.search("invoice rounding"))


async def test_the_workspace_index_feeds_search_and_completion_context(service):
    progress = []
    state = await service.index_workspace(lambda p: progress.append(p.files_done))
    assert state.files_total == 2 and progress[-1] == 2
    hits = await service.search("computeInvoiceTotal")  # camelCase query, snake_case code
    assert hits and "compute_invoice_total" in hits[0].memory.text
    chunks = await service.retrieve("invoice total", budget_tokens=200, exclude_path="app/users.py")
    assert chunks and chunks[0][0] == "app/billing.py"
    context = await service.context_for("find user by email", budget_tokens=200)
    assert "# app/users.py:1-" in context["rag_context"]
    stats = await service.stats()
    assert stats["by_tier"] == {"semantic": 2} and stats["store"] == "EmbeddedMemoryStore"


async def test_export_and_import_round_trip_into_another_workspace(service, tmp_path):
    await service.remember("Deploys happen on Tuesdays.", tier=Tier.short_term, tags=["ops"], importance=0.9)
    out = tmp_path / "backup.jsonl"
    assert await service.export_jsonl(out) == 1
    other = MemoryService(MemorySettings(sqlite_path=tmp_path / "o.sqlite3", journal_dir=tmp_path / "j2"), root=tmp_path / "other")
    try:
        assert await other.import_jsonl(out) == 1
        (memory,) = await other.list()
        assert memory.text == "Deploys happen on Tuesdays." and memory.tags == ("ops",) and memory.importance == 0.9
        assert memory.namespace == other.namespace != service.namespace
    finally:
        await other.close()


async def test_a_bad_import_line_is_named(service, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tier": "long_term", "kind": "note", "text": "ok"}) + "\n" + json.dumps({"tier": "forever", "kind": "note", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: tier: Input should be"):
        await service.import_jsonl(bad)
    assert await service.list() == []  # nothing half-imported


async def test_an_embedding_model_adds_dense_retrieval(tmp_path, tiny_model):
    from gemma_lsp.engine.embedder import GgufEmbedder

    embedder = GgufEmbedder(tiny_model)
    service = MemoryService(
        MemorySettings(sqlite_path=tmp_path / "m.sqlite3", journal_dir=tmp_path / "j", embedding_model=tiny_model),
        root=tmp_path, embedder=embedder,
    )
    try:
        await service.start()
        note = await service.remember("Invoices are rounded to cents.")
        hits = await service.search("how are invoices rounded")
        assert hits[0].id == note.id
        assert hits[0].dense_rank == 1 and hits[0].lexical_rank == 1  # both retrievers found it
    finally:
        await service.close()
        embedder.close()


def test_an_embedding_model_that_is_not_gemma_is_named(tmp_path):
    import gguf

    from gemma_lsp.engine.embedder import GgufEmbedder
    from gemma_lsp.errors import ModelUnavailable

    path = tmp_path / "bert.gguf"
    w = gguf.GGUFWriter(str(path), "bert")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelUnavailable, match="is a 'bert' model"):
        GgufEmbedder(path)
