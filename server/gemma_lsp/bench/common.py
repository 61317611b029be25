"""What the benchmarks share: percentiles and the synthetic source files they type into."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

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
