"""Smoke test of ``gemma-lsp bench rag`` at a small size: the JSON's shape and sane values (no timing targets)."""

from __future__ import annotations

import json
import shutil

import pytest

from gemma_lsp.bench import rag
from gemma_lsp.memory import Kind, Tier


def test_corpus_is_deterministic_and_code_shaped():
    a, b = rag.generate_corpus(50, seed=3), rag.generate_corpus(50, seed=3)
    assert [m.id for m in a.memories] == [m.id for m in b.memories]
    assert len({m.id for m in a.memories}) == 50
    for m in a.memories:
        assert m.tier is Tier.semantic and m.kind is Kind.code_chunk
        assert m.source is not None and m.source.uri.startswith("file://") and m.source.range is not None
        assert 10 <= m.text.count("\n") + 1 <= 20
    queries = rag.make_queries(a, 9)
    assert [q[0] for q in queries] == list(rag.QUERY_KINDS) * 3
    assert all(q[2] in {m.id for m in a.memories} for q in queries)


def test_bench_rag_json_smoke(capsys):
    argv = ["--json", "--quiet", "--chunks", "2000", "--queries", "12", "--dense-seconds", "2", "--dense-queries", "3"]
    have_redis = shutil.which("redis-server") is not None
    assert rag.main(argv) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["suite"] == "rag" and report["chunks"] == 2000 and report["k"] == 10
    assert report["corpus"]["chunks"] == 2000 and report["corpus"]["files"] == 250
    assert sum(report["query_mix"].values()) == 12

    assert report["index_chunks_per_s"] > 0
    emb = report["indexing"]["embedded"]
    assert emb["chunks"] == emb["indexed"] == 2000
    assert emb["combined_chunks_per_s"] == report["index_chunks_per_s"]
    assert emb["total_s"] == pytest.approx(emb["write_s"] + emb["index_build_s"], abs=0.002)

    def check_latency(d, queries):
        assert d["queries"] == queries
        assert 0 < d["p50"] <= d["p95"]

    retrieval = report["retrieval_ms"]
    check_latency(retrieval["embedded"], 12)
    assert retrieval["embedded"]["mean_hits"] == 10
    # code-around-the-cursor queries find their own chunk
    assert retrieval["embedded"]["recall_at_10"]["code"] >= 0.75
    check_latency(report["injection_ms"]["embedded"], 12)
    assert report["injection_ms"]["p95"] == report["injection_ms"]["embedded"]["p95"]
    injection = report["injection_ms"]["embedded"]
    assert 0 < injection["max_block_tokens"] <= injection["budget_tokens"] == 1024
    assert injection["avg_chunks"] >= 1

    if have_redis:
        check_latency(retrieval["redis"], 12)
        assert report["indexing"]["redis"]["indexed"] == 2000
        assert report["environment"]["redis_version"]
        assert "redis" not in report["skipped"]
    else:
        assert retrieval["redis"] is None and "redis" in report["skipped"]

    dense = report["dense"]
    if dense is None:
        assert "dense" in report["skipped"]
    else:
        assert 1 <= dense["chunks"] <= 2000 and dense["vectors"] == dense["chunks"] and dense["dim"] == 64
        assert dense["embed_chunks_per_s"] > 0 and dense["embed_chunks_per_s_server_default"] > 0
        assert dense["workers"] >= 1 and dense["threads_per_worker"] == 1
        # the --dense-seconds cap: when it cut the corpus short, the report says so
        assert (dense["why_subset"] is None) == (dense["chunks"] == 2000)
        if dense["why_subset"]:
            assert "--dense-seconds cap of 2 s" in dense["why_subset"]
        check_latency(dense["hybrid_retrieval_ms"], 3)
        check_latency(dense["hybrid_search_only_ms"], 3)
        check_latency(dense["dense_search_only_ms"], 3)
        check_latency(dense["matvec_ms"], 3)
        assert set(dense["dense_search_only_ms"]["recall_at_10"]) == set(rag.QUERY_KINDS)

    assert set(report["targets"]) == {
        "retrieval_p95_embedded_le_15ms", "retrieval_p95_redis_le_25ms", "injection_p95_le_25ms",
        "indexing_ge_2000_chunks_per_s",
    }  # fmt: skip
    assert report["duration_s"] > 0


def test_bench_rag_table_without_redis_or_dense(capsys):
    assert rag.main(["--quiet", "--chunks", "300", "--queries", "3", "--no-redis", "--no-dense"]) == 0
    out = capsys.readouterr().out
    assert "retrieval embedded" in out and "skipped redis: --no-redis" in out and "skipped dense: --no-dense" in out



def test_bench_rag_dense_embeds_every_chunk_by_default(capsys):
    pytest.importorskip("llama_cpp")
    assert rag.main(["--json", "--quiet", "--chunks", "300", "--queries", "3", "--no-redis", "--dense-queries", "6"]) == 0
    dense = json.loads(capsys.readouterr().out)["dense"]
    assert dense["chunks"] == dense["of_chunks"] == dense["vectors"] == 300 and dense["why_subset"] is None
    assert dense["embed_s"] > 0 and dense["embed_wall_s"] >= dense["embed_s"]
    # the code around a cursor finds its chunk with both retrievers
    assert dense["hybrid_retrieval_ms"]["recall_at_10"]["code"] == 1.0
    assert dense["dense_search_only_ms"]["queries"] == 6
