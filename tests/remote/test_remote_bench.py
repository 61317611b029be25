"""``gemma-lsp bench completion --backend openai``: in-process and remote figures in one report,
with the HTTP hop's cost set against the server's own time per request."""

from __future__ import annotations

import json
import subprocess
import sys

from remote_support import server_extra_installed


def test_the_completion_bench_reports_the_remote_backend_beside_the_in_process_one(tiny_model):
    server_extra_installed()
    proc = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "completion", "--backend", "openai", "--model", str(tiny_model),
         "--requests", "6", "--file-tokens", "400", "--max-tokens", "4", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["latency_ms"]["p50"] > 0 and "backend" not in report  # the in-process run
    remote = report["openai"]
    assert remote["backend"] == "openai" and remote["server"] == "llama-cpp-python"
    assert remote["endpoints"][0]["state"] == "up" and remote["endpoints"][0]["requests"] >= 1
    assert remote["paired_requests"] >= 1
    server, hop = remote["server_ms"]["p50"], remote["http_hop_ms"]["p50"]
    assert 0 < server < remote["engine_ms"]["p95"] and 0 < hop < remote["engine_ms"]["p95"]
    assert remote["http_hop_target_ms"] == 5.0 and remote["http_hop_within_target"] == (hop <= 5.0)
