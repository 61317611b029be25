"""``gemma-lsp bench models``: the quality and speed suites on two GGUFs, stored under one tag and
compared in one table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gemma_lsp.bench.store import BenchStore
from gemma_lsp.engine.testmodel import write_test_model

pytest.importorskip("llama_cpp")


def test_two_models_are_run_stored_and_compared(tmp_path):
    first = write_test_model(tmp_path / "first.gguf", seed=1)
    second = write_test_model(tmp_path / "second.gguf", arch="gemma2", seed=2)
    store = tmp_path / "runs.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "models", str(first), str(second), "--cases", "2", "--requests",
         "3", "--file-tokens", "300", "--no-sampler", "--store", str(store), "--tag", "pair", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["tag"] == "pair" and [r["model"] for r in out["models"]] == [str(first), str(second)]
    with BenchStore(store) as s:
        runs = s.runs(tag="pair")
    assert [(r.suite, r.model["architecture"]) for r in runs] == [
        ("quality", "gemma3"), ("completion", "gemma3"), ("quality", "gemma2"), ("completion", "gemma2")]  # fmt: skip
    for row, (quality, completion) in zip(out["models"], (runs[:2], runs[2:])):
        assert row["runs"] == {"quality": quality.id, "completion": completion.id}
        # the table's figures are the stored runs' own
        assert row["similar"] == quality.figures["ours"]["cold"]["edit_similarity"]
        assert row["key p50 ms"] == completion.figures["latency_ms"]["p50"] > 0
        assert row["decode/s"] > 0 and row["params"] == completion.model["parameters"] and row["quant"] == "F32"
        # each suite ran in its own process: its server's peak memory is its own
        assert completion.memory["peak_rss"]["children_bytes"] > 10_000_000
        assert quality.settings["cases"] == 2 and completion.settings["requests"] == 3
    assert runs[0].model["sha256"] != runs[2].model["sha256"]


def test_a_missing_model_is_one_sentence(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "models", str(tmp_path / "nope.gguf"), "--store",
         str(tmp_path / "s.sqlite3")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"gemma-lsp: the model {tmp_path / 'nope.gguf'} does not exist"
    assert not (tmp_path / "s.sqlite3").exists()
