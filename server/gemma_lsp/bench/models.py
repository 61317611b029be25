"""``gemma-lsp bench models M1 M2 ...``: the quality and speed suites on several GGUFs, side by side.

Each model gets ``bench quality`` (match rates, latency, prefill and decode rates; without the
plain llama-cpp-python peer unless ``--peer``) and ``bench completion`` (keystroke latency through
the server), each in its own process, so the peak memory of each run is its own. Every run is
stored with one tag (``models-<time>`` unless ``--tag``), and the comparison table is read back
from the store: one row per model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .store import BenchStore, Run, StoreError, default_store_path, timestamp

COLUMNS = (  # (title, suite, metric, digits)
    ("params", None, "parameters", None),
    ("quant", None, "quantization", None),
    ("exact", "quality", "ours.cold.exact_line", 3),
    ("similar", "quality", "ours.cold.edit_similarity", 3),
    ("exact typed", "quality", "ours.typed.exact_line", 3),
    ("q p50 ms", "quality", "ours.cold.latency_ms.p50", 0),
    ("prefill/s", "quality", "ours.cold.prefill_tokens_per_s", 0),
    ("decode/s", "quality", "ours.cold.decode_tokens_per_s", 0),
    ("key p50 ms", "completion", "latency_ms.p50", 1),
    ("key p95 ms", "completion", "latency_ms.p95", 1),
    ("server MB", "completion", "memory.peak_rss.children_bytes", -6),
)


def _suite_commands(model: str, args: argparse.Namespace, store: Path, tag: str) -> list[list[str]]:
    base = [sys.executable, "-m", "gemma_lsp", "bench"]
    keep = ["--store", str(store), "--tag", tag]
    quality = [*base, "quality", "--json", "--quiet", "--model", model, "--cases", str(args.cases), "--seed",
               str(args.seed), "--settings", args.settings, *keep]  # fmt: skip
    if not args.peer:
        quality.append("--no-peer")
    if args.no_sampler:
        quality.append("--no-sampler")
    completion = [*base, "completion", "--json", "--model", model, "--requests", str(args.requests),
                  "--file-tokens", str(args.file_tokens), *keep]  # fmt: skip
    return [quality, completion]


def _row(model: str, runs: list[Run]) -> dict[str, Any]:
    """A model's figures for the table, from its stored runs (the latest of each suite)."""
    by_suite = {r.suite: r for r in runs}
    any_run = next(iter(by_suite.values()), None)
    row: dict[str, Any] = {"model": model, "runs": {s: r.id for s, r in by_suite.items()}}
    for title, suite, metric, _ in COLUMNS:
        if suite is None:
            row[title] = any_run.model.get(metric) if any_run else None
        else:
            run = by_suite.get(suite)
            row[title] = run.metrics().get(metric) if run else None
    return row


def _cell(value: Any, digits: int | None) -> str:
    if value is None:
        return "-"
    if digits is None:
        return f"{value / 1e6:.2f}M" if isinstance(value, int) else str(value)
    if digits < 0:
        return f"{value / 10 ** -digits:.0f}"
    return f"{value:.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    name_width = max(len(Path(r["model"]).name) for r in rows) + 2
    head = f"{'model':<{name_width}}" + "".join(f"{title:>12}" for title, *_ in COLUMNS)
    lines = [head]
    for r in rows:
        lines.append(f"{Path(r['model']).name:<{name_width}}"
                     + "".join(f"{_cell(r[title], digits):>12}" for title, _, _, digits in COLUMNS))  # fmt: skip
    lines.append("")
    lines.append("exact / similar: first-line match rates, cold cursor; q p50: quality request latency; "
                 "key: keystroke latency (bench completion); server MB: the language server's peak RSS")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gemma-lsp bench models", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="Gemma GGUF files or named models (at least two to compare)")
    p.add_argument("--cases", type=int, default=20, help="quality cases per model (default 20)")
    p.add_argument("--seed", type=int, default=0, help="which quality cases")
    p.add_argument("--settings", default="{}", help="JSON merged into the server's settings (quality suite)")
    p.add_argument("--peer", action="store_true", help="also run the plain llama-cpp-python peer in the quality suite")
    p.add_argument("--no-sampler", action="store_true", help="skip the quality suite's sampler share")
    p.add_argument("--requests", type=int, default=30, help="keystrokes per model in the completion suite")
    p.add_argument("--file-tokens", type=int, default=1500)
    p.add_argument("--store", type=Path, default=None, help="the results store (default: the user data dir's)")
    p.add_argument("--no-store", action="store_true", help="keep the runs in a temporary store only")
    p.add_argument("--tag", default=None, help="the tag of these runs (default: models-<time>)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    args = p.parse_args(argv)
    for model in args.models:
        if ("/" in model or model.endswith(".gguf")) and not Path(model).expanduser().is_file():
            print(f"gemma-lsp: the model {model} does not exist", file=sys.stderr)
            return 2
    try:
        json.loads(args.settings)
    except json.JSONDecodeError as exc:
        print(f"gemma-lsp: --settings is not JSON: {exc}", file=sys.stderr)
        return 2
    tag = args.tag or f"models-{timestamp()}"
    with tempfile.TemporaryDirectory(prefix="gemma-lsp-bench-models-") as tmp:
        store = Path(tmp) / "runs.sqlite3" if args.no_store else (args.store or default_store_path())
        rows = []
        for model in args.models:
            for command in _suite_commands(model, args, store, tag):
                suite = command[4]
                print(f"[bench models] {Path(model).name}: {suite} ...", file=sys.stderr, flush=True)
                proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
                    print(f"gemma-lsp: bench {suite} failed on {model}: {last}", file=sys.stderr)
                    return 1
            try:
                with BenchStore(store) as s:
                    runs = [r for r in s.runs(tag=tag) if r.settings.get("model") in (model, str(Path(model)))]
            except StoreError as exc:
                print(f"gemma-lsp: {exc}", file=sys.stderr)
                return 1
            rows.append(_row(model, runs))
    print(json.dumps({"tag": tag, "models": rows}) if args.json else format_table(rows))
    if not args.no_store:
        print(f"stored with tag {tag} in {store} (gemma-lsp bench report --tag {tag})", file=sys.stderr)
    return 0
