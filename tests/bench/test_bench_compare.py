"""``gemma-lsp bench compare``: a doubled latency is flagged, run-to-run noise is not, and the noise
threshold comes from the stored repeats of the baseline."""

from __future__ import annotations

import subprocess
import sys

from gemma_lsp.bench.compare import compare, direction, noise
from gemma_lsp.bench.store import BenchStore

MACHINE = {"id": "m1", "cpu": "Test CPU", "cores": 2}
MODEL = {"path": "/models/tiny.gguf", "sha256": "ab" * 32}
SETTINGS = {"requests": 60}


def _completion(store: BenchStore, p50: float, rate: float = 100.0, rev: str = "r1", **kw) -> int:
    figures = {"latency_ms": {"p50": p50, "p95": p50 * 1.5}, "requests": 60, "decode_tokens_per_s": rate}
    fields = {"settings": SETTINGS, "model": MODEL, "machine": MACHINE, "version": "0.1.0", "git_rev": rev} | kw
    return store.add("completion", figures, **fields)


def _verdicts(store: BenchStore, a: int, b: int) -> dict[str, str]:
    return {row.metric: row.verdict for row in compare(store, store.get(a), store.get(b))}


def test_a_doubled_latency_is_a_regression_and_run_to_run_noise_is_not(tmp_path):
    with BenchStore(tmp_path / "s.sqlite3") as store:
        base = [_completion(store, p50) for p50 in (10.0, 10.4, 9.8)]  # three repeats: 6% apart
        doubled = _completion(store, 20.0, rev="r2")
        noisy = _completion(store, 10.5, rev="r2")  # +5%
        faster = _completion(store, 5.0, rate=150.0, rev="r2")
        slower_rate = _completion(store, 10.0, rate=50.0, rev="r2")

        v = _verdicts(store, base[0], doubled)
        assert v["latency_ms.p50"] == "regression" and v["latency_ms.p95"] == "regression"
        assert v["decode_tokens_per_s"] == "" and v["requests"] == ""
        assert set(_verdicts(store, base[0], noisy).values()) == {""}
        assert _verdicts(store, base[0], faster)["latency_ms.p50"] == "improvement"
        assert _verdicts(store, base[0], faster)["decode_tokens_per_s"] == "improvement"
        assert _verdicts(store, base[0], slower_rate)["decode_tokens_per_s"] == "regression"  # a rate halved

        row = next(r for r in compare(store, store.get(base[0]), store.get(doubled)) if r.metric == "latency_ms.p50")
        assert row.ratio == 2.0 and row.repeats == 3 and abs(row.noise - 0.6 / 10.0) < 1e-9 and row.threshold == 0.10


def test_the_threshold_is_the_noise_measured_across_the_baselines_repeats(tmp_path):
    with BenchStore(tmp_path / "s.sqlite3") as store:
        quiet = [_completion(store, p50) for p50 in (10.0, 10.2, 9.9)]
        loud = [_completion(store, p50, rev="r0") for p50 in (10.0, 13.0, 8.0)]  # 50% range on this code
        after_quiet = _completion(store, 13.0, rev="r2")
        after_loud = _completion(store, 13.0, rev="r3")
        # +30%: beyond the quiet baseline's 10% floor, within the loud baseline's own 50% spread
        assert _verdicts(store, quiet[0], after_quiet)["latency_ms.p50"] == "regression"
        assert _verdicts(store, loud[0], after_loud)["latency_ms.p50"] == ""
        # runs on another machine, model or settings are not the baseline's repeats
        other = _completion(store, 10.0, machine={"id": "m2"})
        assert store.repeats(store.get(quiet[0])) == [store.get(i) for i in quiet]
        assert other not in [r.id for r in store.repeats(store.get(quiet[0]))]
        # with no repeats at all, the floor decides
        lone = _completion(store, 10.0, model={"path": "/models/other.gguf"})
        assert _verdicts(store, lone, after_quiet)["latency_ms.p50"] == "regression"
        row = next(r for r in compare(store, store.get(lone), store.get(after_quiet)) if r.metric == "latency_ms.p50")
        assert row.noise is None and row.threshold == 0.10


def test_directions_and_noise():
    assert direction("ours.cold.latency_ms.p50") == -1 and direction("memory.peak_rss.process_bytes") == -1
    assert direction("ours.cold.decode_tokens_per_s") == 1 and direction("ours.cold.exact_line") == 1
    assert direction("ours.cold.edit_similarity") == 1 and direction("requests") == 0
    assert noise([5.0]) is None and noise([10.0, 10.0]) == 0.0 and noise([9.0, 10.0, 11.0]) == 0.2


def test_bench_compare_prints_the_ratios_and_exits_1_on_a_regression(tmp_path):
    path = tmp_path / "s.sqlite3"
    with BenchStore(path) as store:
        a = _completion(store, 10.0)
        b = _completion(store, 20.0, rev="r2")
        c = _completion(store, 10.3, rev="r2")

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "gemma_lsp", "bench", "compare", *args, "--store", str(path)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    bad = run(str(a), str(b))
    assert bad.returncode == 1, bad.stderr
    line = next(x for x in bad.stdout.splitlines() if x.startswith("latency_ms.p50 "))
    assert line.split()[1:5] == ["10", "20", "2.000", "none"] and line.endswith("REGRESSION")
    assert "note: code: r1 vs r2" in bad.stdout and "2 regression(s): latency_ms.p50, latency_ms.p95" in bad.stdout
    good = run(str(a), str(c))
    assert good.returncode == 0 and "0 regression(s)" in good.stdout
    missing = run(str(a), "99")
    assert missing.returncode == 2 and missing.stderr.strip() == f"gemma-lsp: The bench store {path} has no run #99."
    nowhere = subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "bench", "compare", "1", "2", "--store", str(tmp_path / "none.sqlite3")],
        capture_output=True, text=True, timeout=60,
    )
    assert nowhere.returncode == 2 and "there is no bench store at" in nowhere.stderr
