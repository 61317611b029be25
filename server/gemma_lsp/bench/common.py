"""What the benchmarks share: a suite's result, percentiles and the synthetic source files they type into."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SuiteRun:
    """What a suite's ``run(argv)`` returns: its report (the JSON ``--json`` prints), the readable
    text printed otherwise, and what the results store keeps beside them (``bench/store.py``): the
    model measured (a GGUF path or a named model; None when there is none), the suite's settings,
    and the context size the model ran with (for its KV-cache figure)."""

    suite: str
    report: dict[str, Any]
    text: str
    as_json: bool = False
    model: str | Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    n_ctx: int | None = None

    def output(self) -> str:
        return json.dumps(self.report) if self.as_json else self.text


def no_config(workdir: Path) -> list[str]:
    """The server's arguments for an empty settings file of the run's own (``--config`` must name a
    file that exists), so the user's own settings never change a benchmark's figures."""
    path = workdir / "no-config.toml"
    path.touch()
    return ["--config", str(path)]


def suite_settings(args: argparse.Namespace, *leave_out: str) -> dict[str, Any]:
    """A suite's parsed options as the settings it ran with (paths as text; output-only flags left out)."""
    skip = {"json", "quiet", "server_log", *leave_out}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in skip}

FUNCTION = '''
def summarise_{n}(values: list[int], limit: int = {n}) -> dict[str, int]:
    """Summarise the values below the limit for report {n}."""
    result = {{"count": 0, "total": 0}}
    for value in values:
        if value < limit:
            result["count"] += 1
            result["total"] += value
    return result

'''


def functions_for(target_tokens: int, tokenize: Callable[[str], list[int]]) -> list[str]:
    """As many distinct Python functions as fit in about ``target_tokens`` tokens (at least one)."""
    functions = [FUNCTION.format(n=0)]
    n = 1
    while len(tokenize("".join(functions) + FUNCTION.format(n=n))) < target_tokens - 30:
        functions.append(FUNCTION.format(n=n))
        n += 1
    return functions


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 and p95 (nearest rank), rounded to the microsecond when in milliseconds."""
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3)}


def bench_file(
    model: Path, make: Callable[[int, Callable[[str], list[int]]], tuple[str, int]], target_tokens: int, prefix: str
) -> tuple[Path, Path, str, int, int]:
    """Write the file a benchmark types into: ``make(target_tokens, tokenize)`` with the model's own
    tokenizer. Returns (work folder, file path, text, cursor offset, the file's size in tokens)."""
    from gemma_lsp.config import LlamaCppModelSettings
    from gemma_lsp.engine.llamacpp import LlamaCppBackend

    tokenizer = LlamaCppBackend.load(LlamaCppModelSettings(path=model, n_ctx=1024, warmup=False))
    try:
        text, cursor = make(target_tokens, tokenizer.tokenize)
        n_tokens = len(tokenizer.tokenize(text))
    finally:
        tokenizer.close()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    path = workdir / "reports.py"
    path.write_text(text)
    return workdir, path, text, cursor, n_tokens
