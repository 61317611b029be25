"""``gemma-lsp bench report``: the stored runs as a Markdown report with PNG plots.

``report.md`` in ``--out`` (default ``bench-report``) lists the runs (model, machine, code, memory),
then a section per suite with its headline figures, and the plots that the runs have data for:

* ``latency.png``: the distribution of every run's latencies (box plots of the samples the
  completion and quality suites store; p50 and p95 marks for runs without samples);
* ``speed.png``: time to first token and tokens per second per model (chat, quality);
* ``quality.png``: exact-line and edit-similarity rates per model and setting (quality);
* ``sampler.png``: our sampler chains' and llama.cpp's time per token per preset (sampling), or
  the sampler's time per token per preset measured beside the model (quality);
* ``memory.png``: peak RSS per run (the bench process and the server it drives), with the model's
  weights and its KV cache at the run's context size;
* ``trends.png``: each suite's headline figure across runs, in run order.

Plots are drawn with matplotlib's Agg backend (no display needed), imported only here.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .store import BenchStore, Run, StoreError, existing_store

# The figure that stands for a suite in the tables and the trends (a dotted path into its metrics);
# a suite not named here (a new one) gets its first p50, else its first number.
HEADLINES: dict[str, list[tuple[str, str]]] = {
    "completion": [("latency_ms.p50", "latency p50 ms"), ("latency_ms.p95", "latency p95 ms"),
                   ("engine_ms.p50", "engine p50 ms"), ("cold_engine_ms", "cold engine ms")],
    "quality": [("ours.cold.exact_line", "exact (cold)"), ("ours.cold.edit_similarity", "similarity (cold)"),
                ("ours.typed.exact_line", "exact (typed)"), ("ours.cold.latency_ms.p50", "latency p50 ms (cold)"),
                ("ours.cold.decode_tokens_per_s", "decode tok/s")],
    "chat": [("ttft_ms.p50", "TTFT p50 ms"), ("tokens_per_s", "tokens/s"),
             ("completion_while_chatting_ratio", "completion busy/idle")],
    "sampling": [("results[completion/peaked].ours_ms.p50", "completion preset ms/token"),
                 ("results[completion/peaked].native_ms.p50", "llama.cpp ms/token"), ("floor_ms.exp_p50", "exp floor ms")],
    "rag": [("retrieval_ms.embedded.p50", "retrieval p50 ms (SQLite)"), ("retrieval_ms.redis.p50", "retrieval p50 ms (Redis)"), ("injection_ms.p50", "injection p50 ms"),
            ("index_chunks_per_s", "index chunks/s")],
}  # fmt: skip


def headlines(run: Run) -> list[tuple[str, str, float]]:
    """(metric, label, value) of the run's headline figures that it has."""
    metrics = run.metrics()
    found = [(m, label, metrics[m]) for m, label in HEADLINES.get(run.suite, []) if m in metrics]
    if found:
        return found
    p50 = [m for m in metrics if m.endswith(".p50") and not m.startswith("memory.")]
    first = p50[:3] or [m for m in metrics if not m.startswith("memory.")][:3]
    return [(m, m, metrics[m]) for m in first]


def _mb(value: Any) -> str:
    return f"{value / 1e6:.0f}" if isinstance(value, (int, float)) and value else "-"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _short_settings(run: Run, others: list[Run]) -> str:
    """The settings in which this run differs from the other runs of its suite (key=value, short)."""
    keys = sorted({k for r in others for k in r.settings if r.settings.get(k) != run.settings.get(k)} - {"model"})
    text = ", ".join(f"{k}={run.settings.get(k)}" for k in keys)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------ plots


def _samples(run: Run) -> dict[str, list[float]]:
    """The latency samples a run stored, by where they came from (``latency``, ``ours cold``, ...)."""
    out: dict[str, list[float]] = {}

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "latency_samples_ms" and isinstance(item, list) and item:
                    out[" ".join(path) or "latency"] = [float(x) for x in item]
                else:
                    walk(item, [*path, str(key)])

    walk(run.figures, [])
    return out


def _plot_latency(plt, runs: list[Run], path: Path) -> bool:
    boxes, labels, marks = [], [], []
    for run in runs:
        samples = _samples(run)
        for where, values in samples.items():
            if where.startswith("peer"):
                continue
            boxes.append(values)
            where = "" if where == "latency" else where.replace("ours ", "") + "\n"
            labels.append(f"#{run.id} {run.suite}\n{where}{run.model_name[:18]}")
        if not samples:
            m = run.metrics()
            if "latency_ms.p50" in m:
                marks.append((f"#{run.id} {run.suite}\n{run.model_name[:18]}", m["latency_ms.p50"], m.get("latency_ms.p95")))
    if not boxes and not marks:
        return False
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * (len(boxes) + len(marks))), 4.5))
    if boxes:
        ax.boxplot(boxes, showfliers=True)
    for i, (label, p50, p95) in enumerate(marks, start=len(boxes) + 1):
        ax.plot([i], [p50], "o", color="tab:blue")
        if p95 is not None:
            ax.plot([i], [p95], "^", color="tab:red")
    ax.set_xticks(range(1, len(labels) + len(marks) + 1), labels + [m[0] for m in marks], fontsize=7)
    ax.set_ylabel("latency (ms)")
    values = [v for b in boxes for v in b] + [m[1] for m in marks]
    if min(values) > 0 and max(values) / min(values) > 30:
        ax.set_yscale("log")
    ax.set_title("Latency per request by run (box: quartiles, median line)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _bars(plt, path: Path, title: str, panels: dict[str, dict[str, float] | dict[str, dict[str, float]]],
          ylabel: str | dict[str, str], ylim: tuple[float, float] | None = None) -> bool:
    """One panel per key of ``panels``: ``{label: value}`` draws a bar per label; ``{series: {label:
    value}}`` draws the series' bars side by side per label, with a legend."""
    panels = {k: v for k, v in panels.items() if v}
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6, 4.6 * len(panels)), 4.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels.items()):
        series = values if all(isinstance(v, dict) for v in values.values()) else {"": values}
        labels = list(dict.fromkeys(k for s in series.values() for k in s))
        width = 0.8 / len(series)
        for i, (serie, points) in enumerate(series.items()):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
            ys = [points.get(k, 0.0) for k in labels]
            ax.bar(xs, ys, width, label=serie or None)
            for x, y in zip(xs, ys):
                ax.annotate(_fmt(y), (x, y), ha="center", va="bottom", fontsize=6)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel[name] if isinstance(ylabel, dict) else ylabel)
        ax.grid(axis="y", alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
        if len(series) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _latest_per_label(runs: list[Run], label: Callable[[Run], str]) -> dict[str, Run]:
    out: dict[str, Run] = {}
    for run in runs:
        out[label(run)] = run  # runs are oldest first: the latest wins
    return out


def _plot_speed(plt, runs: list[Run], path: Path) -> bool:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    units = {"TTFT p50 (chat)": "ms", "chat tokens/s": "tokens/s", "decode tokens/s (quality, cold)": "tokens/s",
             "prefill tokens/s (quality, cold)": "tokens/s"}  # fmt: skip
    for run in runs:
        m, name = run.metrics(), f"{run.model_name[:20]} #{run.id}"
        if run.suite == "chat":
            if "ttft_ms.p50" in m:
                groups["TTFT p50 (chat)"][name] = m["ttft_ms.p50"]
            if "tokens_per_s" in m:
                groups["chat tokens/s"][name] = m["tokens_per_s"]
        elif run.suite == "quality":
            if "ours.cold.decode_tokens_per_s" in m:
                groups["decode tokens/s (quality, cold)"][name] = m["ours.cold.decode_tokens_per_s"]
            if "ours.cold.prefill_tokens_per_s" in m:
                groups["prefill tokens/s (quality, cold)"][name] = m["ours.cold.prefill_tokens_per_s"]
    return _bars(plt, path, "Speed per model", dict(groups), units)


def _plot_quality(plt, runs: list[Run], path: Path) -> bool:
    quality = [r for r in runs if r.suite == "quality"]
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for run in quality:
        setting = _short_settings(run, quality)
        name = f"#{run.id} {run.model_name[:18]}" + (f"\n{setting[:30]}" if setting else "")
        for mode in ("cold", "typed"):
            m = run.metrics()
            for key, title in (("exact_line", "exact line"), ("edit_similarity", "edit similarity")):
                if f"ours.{mode}.{key}" in m:
                    groups[f"{title} ({mode})"][name] = m[f"ours.{mode}.{key}"]
    return _bars(plt, path, "Completion quality per model and setting", dict(groups), "rate", ylim=(0.0, 1.05))


def _plot_sampler(plt, runs: list[Run], path: Path) -> bool:
    sampling = [r for r in runs if r.suite == "sampling"]
    if sampling:
        run = sampling[-1]
        panels: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for row in run.figures.get("results", []):
            panels[f"{row['shape']} logits"]["ours"][row["preset"]] = row["ours_ms"]["p50"]
            panels[f"{row['shape']} logits"]["llama.cpp"][row["preset"]] = row["native_ms"]["p50"]
        title = f"Sampler time per token per preset (p50), run #{run.id}, vocabulary {run.figures.get('vocab')}"
        return _bars(plt, path, title, {k: dict(v) for k, v in panels.items()}, "ms per token")
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for run in [r for r in runs if r.suite == "quality" and r.figures.get("sampler")][-4:]:
        for preset, s in run.figures["sampler"].items():
            series[f"#{run.id} {run.model_name[:20]}"][preset] = s["sampler_ms_p50"]
    title = "Sampler time per token per preset, beside the model (quality suite, p50)"
    return _bars(plt, path, title, {"by preset": dict(series)} if series else {}, "ms per token")


def _plot_memory(plt, runs: list[Run], path: Path) -> bool:
    rows = [r for r in runs if r.memory.get("peak_rss")]
    if not rows:
        return False
    labels = [f"#{r.id} {r.suite}\n{r.model_name[:18]}" for r in rows]
    series = {
        "bench process peak RSS": [r.memory["peak_rss"].get("process_bytes") or 0 for r in rows],
        "server / children peak RSS": [r.memory["peak_rss"].get("children_bytes") or 0 for r in rows],
        "model weights": [r.memory.get("model", {}).get("weights_bytes") or 0 for r in rows],
        "KV cache at n_ctx (f16, upper bound)": [r.memory.get("model", {}).get("kv_cache_bytes_at_n_ctx") or 0
                                                 for r in rows],
    }  # fmt: skip
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(rows)), 4.5))
    width = 0.2
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + (i - 1.5) * width for x in range(len(rows))], [v / 1e6 for v in values], width, label=name)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("MB")
    ax.set_title("Memory per run")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_trends(plt, runs: list[Run], path: Path) -> bool:
    by_suite: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_suite[run.suite].append(run)
    panels = []
    for suite, suite_runs in by_suite.items():
        first = headlines(suite_runs[-1])
        if not first:
            continue
        metric, label, _ = first[0]
        points = [(r.id, r.metrics()[metric]) for r in suite_runs if metric in r.metrics()]
        panels.append((suite, label, points))
    if not panels:
        return False
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.4 * len(panels)), squeeze=False)
    for ax, (suite, label, points) in zip(axes[:, 0], panels):
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-")
        ax.set_title(f"{suite}: {label}", fontsize=9)
        ax.set_xlabel("run id", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


PLOTS = (
    ("latency.png", "Latency distributions", _plot_latency),
    ("speed.png", "TTFT and tokens per second per model", _plot_speed),
    ("quality.png", "Quality per model and setting", _plot_quality),
    ("sampler.png", "Sampler cost per preset", _plot_sampler),
    ("memory.png", "Memory", _plot_memory),
    ("trends.png", "Trends across runs", _plot_trends),
)


# ------------------------------------------------------------------------------ the report


def write_report(runs: list[Run], out: Path, store_path: Path | None = None) -> Path:
    """``out/report.md`` and its PNGs for ``runs``; the Markdown file's path."""
    try:
        import matplotlib
    except ImportError:
        raise StoreError("bench report draws its plots with matplotlib, which is not installed: "
                         "pip install 'gemma-lsp[bench]' (or matplotlib).") from None  # fmt: skip
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    suites = list(dict.fromkeys(r.suite for r in runs))
    md = [
        "# gemma-lsp benchmark report", "",
        f"{len(runs)} run(s) of {', '.join(suites)}" + (f" from `{store_path}`" if store_path else "") + f", {now}.",
        "", "## Runs", "",
        "| run | time (UTC) | suite | model | params | quant | machine | code | tag | peak RSS MB (bench / server) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in runs:
        params = r.model.get("parameters")
        machine = f"{r.machine.get('cpu', '?')} x{r.machine.get('cores', '?')}" if r.machine else "-"
        rss = r.memory.get("peak_rss", {})
        md.append(
            f"| {r.id} | {r.started[:19].replace('T', ' ')} | {r.suite} | {r.model_name} | "
            f"{f'{params / 1e6:.2f}M' if params else '-'} | {r.model.get('quantization') or '-'} | {machine} | "
            f"{r.git_rev or r.version or '-'} | {r.tag or ''} | {_mb(rss.get('process_bytes'))} / "
            f"{_mb(rss.get('children_bytes'))} |"
        )
    for suite in suites:
        suite_runs = [r for r in runs if r.suite == suite]
        md += ["", f"## {suite}", ""]
        columns = list(dict.fromkeys(label for r in suite_runs for _, label, _ in headlines(r)))
        md += ["| run | model | settings | " + " | ".join(columns) + " |", "|---|---|---|" + "---|" * len(columns)]
        for r in suite_runs:
            values = {label: value for _, label, value in headlines(r)}
            cells = [_fmt(values[c]) if c in values else "-" for c in columns]
            md.append(f"| {r.id} | {r.model_name} | {_short_settings(r, suite_runs) or '-'} | " + " | ".join(cells) + " |")
        kv = [r for r in suite_runs if r.memory.get("model")]
        if kv:
            mem = kv[-1].memory["model"]
            md += ["", f"Model memory (run {kv[-1].id}): weights {_mb(mem.get('weights_bytes'))} MB; KV cache "
                   f"{mem.get('kv_cache_bytes_per_token', '-')} bytes per token, "
                   f"{_mb(mem.get('kv_cache_bytes_at_n_ctx'))} MB at n_ctx {mem.get('n_ctx', '-')} "
                   "(f16 keys and values on every layer: an upper bound with sliding-window layers)."]  # fmt: skip
    md += ["", "## Plots", ""]
    for name, title, plot in PLOTS:
        target = out / name
        if plot(plt, runs, target):
            md += [f"### {title}", "", f"![{title}]({name})", ""]
        elif target.exists():
            target.unlink()  # an earlier report's plot that these runs have no data for
    report = out / "report.md"
    report.write_text("\n".join(md) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gemma-lsp bench report", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", type=Path, default=None, help="the results store (default: the user data dir's)")
    p.add_argument("--last", type=int, default=None, metavar="N", help="only the last N runs (of --suite)")
    p.add_argument("--suite", default=None, help="only this suite's runs")
    p.add_argument("--tag", default=None, help="only the runs with this tag")
    p.add_argument("--out", type=Path, default=Path("bench-report"), help="folder for report.md and its PNGs")
    args = p.parse_args(argv)
    if args.last is not None and args.last < 1:
        p.error("--last must be at least 1")
    path = existing_store(args.store)
    if path is None:
        return 2
    try:
        with BenchStore(path) as store:
            runs = store.runs(suite=args.suite, last=args.last, tag=args.tag)
        if not runs:
            what = " ".join(x for x in (args.suite and f"of suite {args.suite}", args.tag and f"tagged {args.tag}") if x)
            print(f"gemma-lsp: the bench store {path} has no runs{' ' + what if what else ''}", file=sys.stderr)
            return 2
        report = write_report(runs, args.out, path)
    except StoreError as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gemma-lsp: cannot write the report to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {report} ({len(runs)} runs)")
    return 0
