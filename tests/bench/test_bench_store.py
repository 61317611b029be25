"""The bench results store: a run goes in and comes back whole, an old store is migrated, a bad
store is one sentence, and ``gemma-lsp bench SUITE`` stores every run (or not, with --no-store)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gemma_lsp.bench.store import SCHEMA_VERSION, BenchStore, StoreError, default_store_path, record, store_options


def _gguf_parameters(path: Path) -> int:
    import gguf

    return sum(int(t.n_elements) for t in gguf.GGUFReader(path).tensors)


def test_a_recorded_run_comes_back_with_its_model_machine_memory_and_code(tiny_model, tmp_path):
    store_path = tmp_path / "runs.sqlite3"
    figures = {"suite": "completion", "latency_ms": {"p50": 12.5, "p95": 20.0}, "requests": 8}
    run_id, path = record(
        "completion", figures, model=tiny_model, settings={"requests": 8}, n_ctx=4096, tag="t1", path=store_path
    )
    assert path == store_path and store_path.is_file()
    with BenchStore(store_path) as store:
        run = store.get(run_id)
        assert store.schema_version == SCHEMA_VERSION
    assert run.suite == "completion" and run.figures == figures and run.settings == {"requests": 8} and run.tag == "t1"
    assert run.model["path"] == str(tiny_model.resolve())
    assert run.model["sha256"] == hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert run.model["architecture"] == "gemma3" and run.model["quantization"] == "F32"
    assert run.model["parameters"] == _gguf_parameters(tiny_model) and run.model["bytes"] == tiny_model.stat().st_size
    assert run.machine["cores"] >= 1 and run.machine["cpu"] and run.machine["memory_bytes"] > 0
    assert isinstance(run.machine["simd"], list) and run.machine_id == run.machine["id"]
    assert run.version and run.started.endswith("Z")
    # the tiny model: 2 layers, 1 KV head, keys and values 32 wide, f16
    assert run.memory["model"]["kv_cache_bytes_per_token"] == 2 * 1 * (32 + 32) * 2
    assert run.memory["model"]["kv_cache_bytes_at_n_ctx"] == 256 * 4096
    assert run.memory["model"]["weights_bytes"] == tiny_model.stat().st_size
    assert run.memory["peak_rss"]["process_bytes"] > 10_000_000
    assert run.metrics()["latency_ms.p50"] == 12.5 and run.metrics()["memory.model.n_ctx"] == 4096


def test_runs_are_listed_by_suite_tag_and_last_n(tmp_path):
    with BenchStore(tmp_path / "s.sqlite3") as store:
        ids = [store.add(suite, {"x": i}, tag=tag) for i, (suite, tag) in enumerate(
            [("completion", "a"), ("quality", "a"), ("completion", None), ("completion", "b")])]  # fmt: skip
        assert [r.id for r in store.runs()] == ids
        assert [r.id for r in store.runs(suite="completion")] == [ids[0], ids[2], ids[3]]
        assert [r.id for r in store.runs(suite="completion", last=2)] == [ids[2], ids[3]]
        assert [r.id for r in store.runs(tag="a")] == ids[:2]
        with pytest.raises(StoreError, match=r"has no run #99"):
            store.get(99)


def test_an_old_store_is_migrated_and_keeps_its_runs(tmp_path):
    """Schema version 1: runs(id, time, suite, model, report), a Unix time and the model's path."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, time REAL NOT NULL, suite TEXT NOT NULL, model TEXT, report TEXT NOT NULL);"
    )
    # 1717243200 is 2024-06-01 12:00:00 UTC
    db.execute("INSERT INTO runs VALUES (1, ?, 'completion', '/models/a.gguf', ?)", (1717243200.0, json.dumps({"latency_ms": {"p50": 10.0}})))
    db.execute("INSERT INTO runs VALUES (2, ?, 'sampling', NULL, ?)", (1717243260.0, json.dumps({"vocab": 1024})))
    db.commit()
    db.close()

    with BenchStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        old = store.runs()
        assert [(r.id, r.suite, r.started) for r in old] == [
            (1, "completion", "2024-06-01T12:00:00Z"), (2, "sampling", "2024-06-01T12:01:00Z")]  # fmt: skip
        assert old[0].figures == {"latency_ms": {"p50": 10.0}} and old[0].model == {"path": "/models/a.gguf"}
        assert old[1].model == {} and old[0].machine == {} and old[0].memory == {} and old[0].settings == {}
        new_id = store.add("completion", {"latency_ms": {"p50": 11.0}}, machine={"id": "m1"})
        assert new_id == 3
    # opened again: already at the current version, nothing migrated twice
    with BenchStore(path) as store:
        assert [r.id for r in store.runs()] == [1, 2, 3] and store.get(3).machine_id == "m1"
        assert store.db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_a_store_it_cannot_use_is_one_sentence(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    db = sqlite3.connect(newer)
    db.executescript("CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version VALUES (99);")
    db.close()
    with pytest.raises(StoreError, match=r"schema version 99, newer than this gemma-lsp knows \(2\)"):
        BenchStore(newer)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).executescript("CREATE TABLE notes (x TEXT);")
    with pytest.raises(StoreError, match=r"SQLite file of something else"):
        BenchStore(other)
    text = tmp_path / "text.sqlite3"
    text.write_text("not a database at all, just some words " * 100)
    with pytest.raises(StoreError, match=r"is not a results store"):
        BenchStore(text)
    with pytest.raises(StoreError, match=r"is a folder"):
        BenchStore(tmp_path)


def test_store_options_are_taken_out_of_a_suites_arguments(tmp_path):
    assert store_options(["--requests", "3"]) == (default_store_path(), None, ["--requests", "3"])
    assert store_options(["--store", str(tmp_path / "x"), "--json", "--tag=nightly"]) == (tmp_path / "x", "nightly", ["--json"])
    assert store_options(["--no-store", "--json"])[0] is None
    with pytest.raises(ValueError, match="--store needs a value"):
        store_options(["--json", "--store"])


def _bench(*args: str, env_store: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if env_store:
        env["GEMMA_LSP_BENCH_STORE"] = str(env_store)
    return subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", *args], capture_output=True, text=True, timeout=240, env=env
    )


def test_every_bench_run_is_stored_unless_told_not_to(tmp_path):
    pytest.importorskip("llama_cpp")
    store = tmp_path / "bench.sqlite3"
    sampling = ["sampling", "--json", "--repeats", "2", "--vocab", "1024"]
    proc = _bench(*sampling, "--store", str(store), "--tag", "ci")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert f"stored as run 1 in {store}" in proc.stderr
    with BenchStore(store) as s:
        (run,) = s.runs()
    assert run.figures == printed and run.tag == "ci" and run.suite == "sampling"
    assert run.settings == {"cold": False, "repeats": 2, "seed": 0, "vocab": 1024}
    assert run.memory["peak_rss"]["process_bytes"] > 0 and run.model == {}

    proc = _bench(*sampling, "--no-store", env_store=store)
    assert proc.returncode == 0 and "stored" not in proc.stderr
    proc = _bench(*sampling, env_store=store)  # $GEMMA_LSP_BENCH_STORE
    assert proc.returncode == 0 and f"stored as run 2 in {store}" in proc.stderr
    with BenchStore(store) as s:
        assert [r.id for r in s.runs()] == [1, 2]

    bad = _bench(*sampling, "--store", str(tmp_path))
    assert bad.returncode == 1 and json.loads(bad.stdout)["vocab"] == 1024  # the figures are still printed
    assert bad.stderr.strip().splitlines()[-1] == (
        f"gemma-lsp: the results were not stored: The bench store {tmp_path} is a folder; give a file path (--store PATH)."
    )
    missing = _bench("sampling", "--store")
    assert missing.returncode == 2 and "--store needs a value" in missing.stderr


def test_the_default_store_is_in_the_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMMA_LSP_BENCH_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "gemma-lsp" / "bench.sqlite3"
    monkeypatch.setenv("GEMMA_LSP_BENCH_STORE", str(tmp_path / "mine.sqlite3"))
    assert default_store_path() == tmp_path / "mine.sqlite3"
