"""``gemma-lsp bench compare RUN_A RUN_B``: every figure of two stored runs side by side, B / A, and
the regressions beyond the noise.

The noise of a figure is measured, not assumed: the relative range ``(max - min) / median`` of that
figure over A's repeats, the stored runs with A's suite, settings, model file, machine and code
revision (B left out). A change beyond that range, and at least ``--floor`` (10% by default, all
there is when A has no repeats), in the bad direction is flagged: up for times, sizes and memory,
down for rates and match scores. Figures with no known direction are shown with ``--all`` and
never flagged. Exit status 1 when anything is flagged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from .store import BenchStore, Run, StoreError, existing_store

FLOOR = 0.10
# Read against the figure's dotted path, lower-cased; the first list that matches decides.
HIGHER_IS_BETTER = ("per_s", "exact", "similarity", "recall", "hit_rate", "mrr", "ndcg", "precision", "accuracy")
LOWER_IS_BETTER = ("_ms", "latency", "bytes", "empty_rate", "fragment_rate", "duration_s")


def direction(metric: str) -> int:
    """+1 when more is better, -1 when less is, 0 when the name does not say."""
    name = metric.lower()
    if any(word in name for word in HIGHER_IS_BETTER):
        return 1
    if any(word in name for word in LOWER_IS_BETTER):
        return -1
    return 0


@dataclass
class Row:
    metric: str
    a: float
    b: float
    ratio: float | None  # b / a
    threshold: float  # the relative change beyond which a change counts
    noise: float | None  # measured from A's repeats; None when A has none
    repeats: int  # how many runs the noise came from
    direction: int
    verdict: str  # "regression", "improvement" or ""


def noise(values: list[float]) -> float | None:
    """The relative range of repeated measurements, ``(max - min) / |median|``; None under two."""
    if len(values) < 2:
        return None
    middle = statistics.median(values)
    if middle == 0:
        return 0.0 if max(values) == min(values) else float("inf")
    return (max(values) - min(values)) / abs(middle)


def compare(store: BenchStore, a: Run, b: Run, floor: float = FLOOR) -> list[Row]:
    """A row per figure the two runs share, with B / A and the verdict against the measured noise."""
    repeats = [r for r in store.repeats(a) if r.id != b.id]
    if all(r.id != a.id for r in repeats):
        repeats.append(a)
    series = [r.metrics() for r in repeats]
    am, bm = a.metrics(), b.metrics()
    rows = []
    for metric in sorted(am.keys() & bm.keys()):
        va, vb = am[metric], bm[metric]
        spread = noise([m[metric] for m in series if metric in m])
        threshold = max(floor, spread or 0.0)
        ratio = vb / va if va else None
        sign = direction(metric)
        verdict = ""
        if sign and va:
            change = (vb - va) / abs(va)
            if change * sign < -threshold:
                verdict = "regression"
            elif change * sign > threshold:
                verdict = "improvement"
        elif sign and vb != va:  # from zero: any move in the bad direction is beyond noise
            verdict = "regression" if (vb - va) * sign < 0 else "improvement"
        used = sum(1 for m in series if metric in m)
        rows.append(Row(metric, va, vb, ratio, threshold, spread, used if spread is not None else 0, sign, verdict))
    return rows


def differences(a: Run, b: Run) -> list[str]:
    """What makes two runs not like for like: one line each."""
    out = []
    if a.suite != b.suite:
        out.append(f"different suites: {a.suite} vs {b.suite}")
    if (a.model.get("sha256") or a.model.get("path")) != (b.model.get("sha256") or b.model.get("path")):
        out.append(f"different models: {a.model_name} vs {b.model_name}")
    if a.machine_id != b.machine_id:
        out.append(f"different machines: {a.machine.get('cpu', '?')} vs {b.machine.get('cpu', '?')}")
    if a.settings != b.settings:
        keys = sorted(k for k in a.settings.keys() | b.settings.keys() if a.settings.get(k) != b.settings.get(k))
        out.append(f"different settings: {', '.join(keys)}")
    if a.git_rev != b.git_rev:
        out.append(f"code: {a.git_rev or a.version} vs {b.git_rev or b.version}")
    return out


def _num(value: float) -> str:
    return f"{value:.4g}"


def format_rows(rows: list[Row], show_all: bool = False) -> list[str]:
    shown = [r for r in rows if show_all or r.direction]
    width = max([len(r.metric) for r in shown] + [6])
    lines = [f"{'figure':<{width}}  {'A':>10}  {'B':>10}  {'B/A':>7}  {'noise':>12}  flag"]
    for r in shown:
        ratio = f"{r.ratio:.3f}" if r.ratio is not None else "-"
        measured = f"{r.noise * 100:.0f}% of {r.repeats}" if r.noise is not None else "none"
        flag = {"regression": "REGRESSION", "improvement": "better"}.get(r.verdict, "")
        lines.append(f"{r.metric:<{width}}  {_num(r.a):>10}  {_num(r.b):>10}  {ratio:>7}  {measured:>12}  {flag}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gemma-lsp bench compare", description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", type=int, help="the baseline run's id (see gemma-lsp bench report)")
    p.add_argument("run_b", type=int, help="the run to judge")
    p.add_argument("--store", type=Path, default=None, help="the results store (default: the user data dir's)")
    p.add_argument("--floor", type=float, default=FLOOR, help="the smallest relative change flagged (default 0.10)")
    p.add_argument("--all", action="store_true", help="also the figures with no known better direction")
    args = p.parse_args(argv)
    path = existing_store(args.store)
    if path is None:
        return 2
    try:
        with BenchStore(path) as store:
            a, b = store.get(args.run_a), store.get(args.run_b)
            rows = compare(store, a, b, args.floor)
    except StoreError as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2
    print(f"A: {a.label()} ({a.started}, {a.git_rev or a.version})")
    print(f"B: {b.label()} ({b.started}, {b.git_rev or b.version})")
    for line in differences(a, b):
        print(f"note: {line}")
    print(f"noise: the range of each figure over A's repeats (same suite, settings, model, machine, code), "
          f"at least {args.floor * 100:.0f}%")  # fmt: skip
    print()
    print("\n".join(format_rows(rows, args.all)))
    regressions = [r.metric for r in rows if r.verdict == "regression"]
    print()
    print(f"{len(regressions)} regression(s)" + (f": {', '.join(regressions)}" if regressions else ""))
    return 1 if regressions else 0
