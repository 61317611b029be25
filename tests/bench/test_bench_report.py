"""``gemma-lsp bench report`` on stored runs: the Markdown names every suite and its runs, and every
plot it links is a real, non-empty PNG.

``stored_runs.json`` holds real short runs of each suite on the tiny test model (sampling, two
completion runs, quality, chat, rag), as the store keeps them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gemma_lsp.bench.report import PLOTS, write_report
from gemma_lsp.bench.store import BenchStore

pytest.importorskip("matplotlib")

STORED = Path(__file__).with_name("stored_runs.json")
PNG = b"\x89PNG\r\n\x1a\n"


def _store(path: Path) -> list[int]:
    runs = json.loads(STORED.read_text())
    with BenchStore(path) as store:
        ids = [store.add(r.pop("suite"), r.pop("figures"), **r) for r in runs]
        # a suite the report has never heard of (a future one) still gets its section and trend
        ids.append(store.add("soak", {"suite": "soak", "latency_ms": {"p50": 14.0, "p95": 30.0}, "hours": 1}))
    return ids


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG, path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_report_names_every_suite_and_draws_every_plot(tmp_path):
    store_path = tmp_path / "runs.sqlite3"
    ids = _store(store_path)
    with BenchStore(store_path) as store:
        runs = store.runs()
    out = tmp_path / "report"
    md = write_report(runs, out, store_path).read_text()

    for suite in ("sampling", "completion", "quality", "chat", "rag", "soak"):
        assert f"\n## {suite}\n" in md, suite
    for run_id in ids:
        assert f"\n| {run_id} | " in md
    assert "| 0.15M | F32 |" in md and "AMD EPYC x2" in md  # the model and machine columns
    assert "KV cache 256 bytes per token" in md
    linked = {line.split("(")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")}
    assert linked == {name for name, _, _ in PLOTS}  # these runs have data for every plot
    for name in linked:
        width, height = _png_size(out / name)
        assert width >= 500 and height >= 300 and (out / name).stat().st_size > 10_000, name


def test_a_report_of_one_suite_draws_only_what_it_has_data_for(tmp_path):
    store_path = tmp_path / "runs.sqlite3"
    _store(store_path)
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "report", "--store", str(store_path), "--suite", "completion",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out / 'report.md'} (2 runs)"
    md = (out / "report.md").read_text()
    assert "\n## completion\n" in md and "## quality" not in md and "## sampling" not in md
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert drawn == ["latency.png", "memory.png", "trends.png"]
    assert all(_png_size(out / name)[0] > 0 for name in drawn)

    last = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "report", "--store", str(store_path), "--last", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert last.returncode == 0 and "(1 runs)" in last.stdout
    # the soak run kept p50 and p95 only (drawn as marks) and no memory: the old memory plot is gone
    assert "## soak" in (out / "report.md").read_text()
    assert (out / "latency.png").exists() and not (out / "memory.png").exists()


def test_a_report_with_nothing_to_show_is_one_sentence(tmp_path):
    store_path = tmp_path / "runs.sqlite3"
    _store(store_path)

    def report(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "gemma_lsp", "bench", "report", *args, "--out", str(tmp_path / "r")]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    none = report("--store", str(store_path), "--suite", "nope")
    assert none.returncode == 2
    assert none.stderr.strip() == f"gemma-lsp: the bench store {store_path} has no runs of suite nope"
    missing = report("--store", str(tmp_path / "missing.sqlite3"))
    assert missing.returncode == 2 and "there is no bench store at" in missing.stderr
    assert not (tmp_path / "missing.sqlite3").exists()
