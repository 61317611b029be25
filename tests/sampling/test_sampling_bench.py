"""``gemma-lsp bench sampling``: the report's shape (on a small vocabulary, so it is quick)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")

from gemma_lsp.bench.sampling import BENCH_PRESETS, SHAPES, main, make_logits, run_sampling_bench  # noqa: E402


def test_the_report_has_one_row_per_preset_and_shape():
    report = run_sampling_bench(repeats=3, vocab=2048)
    assert report["vocab"] == 2048
    rows = report["results"]
    assert [(r["preset"], r["shape"]) for r in rows] == [(p, s) for s in SHAPES for p in BENCH_PRESETS]
    assert set(BENCH_PRESETS) == {"greedy", "completion", "balanced", "dynatemp", "mirostat", "typical", "penalties"}
    for row in rows:
        assert set(row) == {"preset", "shape", "ours_ms", "native_ms", "ratio_p50"}
        for key in ("ours_ms", "native_ms"):
            assert set(row[key]) == {"p50", "p95"}
            assert 0 < row[key]["p50"] <= row[key]["p95"]
        assert row["ratio_p50"] == pytest.approx(row["ours_ms"]["p50"] / row["native_ms"]["p50"], rel=1e-2)


def test_the_report_has_a_same_run_exp_floor():
    report = run_sampling_bench(repeats=3, vocab=2048)
    floor = report["floor_ms"]
    assert set(floor) == {"exp_p50", "what"}
    assert floor["exp_p50"] > 0 and "exp" in floor["what"]


def test_main_prints_one_json_object(capsys):
    assert main(["--json", "--repeats", "2", "--vocab", "1024"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vocab"] == 1024 and len(report["results"]) == len(BENCH_PRESETS) * len(SHAPES)


def test_the_logit_shapes_are_what_they_say():
    import numpy as np

    peaked = make_logits("peaked", 262_144, seed=0).astype(np.float64)
    flat = make_logits("flat", 262_144, seed=0).astype(np.float64)

    def top_and_entropy(x):
        p = np.exp(x - x.max())
        p /= p.sum()
        return p.max(), -(p * np.log(p)).sum()

    top, _ = top_and_entropy(peaked)
    assert 0.3 < top < 0.7
    _, entropy = top_and_entropy(flat)
    assert entropy > np.log(262_144) - 0.6
