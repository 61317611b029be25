"""``gemma-lsp bench chat`` on the tiny test model: the report has every figure, and they are sane."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_chat_reports_ttft_rates_and_completion_latency_while_chatting(tiny_model):
    proc = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "chat", "--model", str(tiny_model), "--turns", "2",
         "--keystrokes", "3", "--json", "--quiet"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("ttft_ms", "tokens_per_s", "raw_decode_tokens_per_s", "completion_idle_ms",
                "completion_while_chatting_ms", "completion_while_chatting_ratio"):
        assert report[key], key
    assert 0 < report["ttft_ms"]["p50"] <= report["ttft_ms"]["p95"]
    assert report["tokens_per_s"] > 0 and report["raw_decode_tokens_per_s"] > 0
    assert report["completion_while_chatting_ratio"] > 0
    assert set(report["targets"]) == {
        "completion_while_chatting_le_1_5x_idle", "ttft_le_1000ms", "tokens_per_s_within_10pct_of_raw",
    }
