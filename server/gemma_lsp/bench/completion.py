"""``gemma-lsp bench completion``: latency of inline completions through the real server.

Drives ``gemma-lsp serve`` over stdio as an editor does: opens a ~1,500-token source file,
then for each of N requests types one character at the cursor (near the end of the file) and
asks for an inline completion. Per request it records the latency (request sent -> response
received) and what the server reports for it through ``gemma/stats`` (time inside the engine,
prompt tokens evaluated), and prints one JSON object.

``--backend openai`` runs the same keystrokes a second time in the same run, with the remote
backend on an OpenAI-compatible server: llama-cpp-python's, started here on a loopback port on
the same model (or the server at ``--base-url``). That server writes down the time it spent on
each request, from its arrival to the last byte of the answer; the HTTP hop's cost is the time
the remote backend waited for the answer minus that (target: at most 5 ms at the median).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import SuiteRun, bench_file, functions_for, no_config, percentiles, suite_settings

def make_source(target_tokens: int, tokenize) -> tuple[str, int]:
    """A Python file of about ``target_tokens`` tokens and the cursor offset near its end."""
    body = '"""Reports generated for the benchmark."""\n\n' + "".join(functions_for(target_tokens - 30, tokenize))
    tail = "\n\ndef main() -> None:\n    data = [3, 1, 4, 1, 5, 9, 2, 6]\n    "
    cursor = len(body) + len(tail)
    return body + tail + "\n\nif __name__ == \"__main__\":\n    main()\n", cursor


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return line, col  # ASCII file: UTF-16 columns equal str columns


async def run_completion_bench(
    model: Path,
    requests: int = 60,
    file_tokens: int = 1500,
    max_tokens: int = 16,
    server_log: Path | None = None,
    model_settings: dict[str, Any] | None = None,
    timings: Callable[[], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The keystrokes against ``model`` in-process, or with ``model_settings`` (a remote backend);
    ``timings`` reads the remote server's own time per request, to pair with each answer."""
    from gemma_lsp.lsp.client import EditorSession, file_uri

    workdir, path, text, cursor, file_token_count = bench_file(model, make_source, file_tokens, "gemma-lsp-bench-")
    uri = file_uri(path)
    session = EditorSession(
        settings={
            "model": model_settings or {"path": str(model), "idle_unload_seconds": 0},
            "completion": {"max_tokens": max_tokens, "max_lines": 4, "prefix_tokens": 2048},
        },
        server_args=no_config(workdir)
        + (["--log-file", str(server_log), "-vv"] if server_log else []),
    )
    await session.start()
    try:
        session.open(uri, text)
        stats = await session.wait_until_loaded()
        if stats.get("load_error"):
            raise RuntimeError(stats["load_error"])
        line, col = _line_col(text, cursor)
        await session.inline(uri, line, col)
        cold = (await session.stats())["last"]
        latency, engine, overhead, evaluated = [], [], [], []
        server_ms, hop_ms, remote = [], [], None
        seen = len(timings()) if timings else 0
        typed = "result = fibonacci(n) + total_count"
        for i in range(requests):
            ch = typed[i % len(typed)]
            session.insert(uri, line, col, ch)
            col += 1
            t0 = time.perf_counter()
            await session.inline(uri, line, col)
            elapsed = (time.perf_counter() - t0) * 1000
            stats = await session.stats()
            last = stats["last"]
            latency.append(elapsed)
            engine.append(last["engine_ms"])
            overhead.append(elapsed - last["engine_ms"])
            evaluated.append(last["tokens_evaluated"])
            remote = stats.get("remote") or remote
            if timings is not None:
                new, seen = _new_timings(timings, seen)
                answered = [t for t in new if t["path"].endswith("/completions") and t["max_tokens"] == max_tokens]
                if stats["completion"]["last"].get("source") == "engine" and len(answered) == 1:
                    server_ms.append(answered[0]["ms"])
                    hop_ms.append(last["engine_ms"] - answered[0]["ms"])
    finally:
        await session.stop()
    extra: dict[str, Any] = {}
    if model_settings is not None:
        extra = {
            "backend": model_settings.get("backend"),
            "endpoints": remote["endpoints"] if remote else None,
            "server": remote["server"] if remote else None,
            "prompts": remote["prompts"] if remote else None,
            "tokenizer": remote["tokenizer"] if remote else None,
        }
        if timings is not None:
            extra.update(
                paired_requests=len(hop_ms),
                server_ms=percentiles(server_ms),
                http_hop_ms=percentiles(hop_ms),
            )
    return {
        "suite": "completion",
        "model": str(model),
        "file_tokens": file_token_count,
        "requests": requests,
        "max_tokens": max_tokens,
        "latency_ms": percentiles(latency),
        "latency_samples_ms": [round(x, 3) for x in latency],
        "engine_ms": percentiles(engine),
        "overhead_ms": percentiles(overhead),
        "tokens_evaluated": {"p50": statistics.median(evaluated)},
        "cold_tokens_evaluated": cold["tokens_evaluated"],
        "cold_engine_ms": round(cold["engine_ms"], 3),
        **extra,
    }


def _new_timings(timings: Callable[[], list[dict[str, Any]]], seen: int) -> tuple[list[dict[str, Any]], int]:
    """The server's timing lines written since ``seen`` (they are written when an answer ends)."""
    found = timings()
    return found[seen:], len(found)


HOP_TARGET_MS = 5.0  # the HTTP hop's median cost over the server's own time, on loopback


def run_openai_bench(
    model: Path, base_url: str | None, requests: int, file_tokens: int, max_tokens: int, server_log: Path | None
) -> dict[str, Any]:
    """The keystrokes with the remote backend: on ``base_url``, or on llama-cpp-python's server
    started here on ``model`` (with its time per request written down)."""
    from gemma_lsp.engine.testserver import OpenAIServer

    settings = {"backend": "openai", "idle_unload_seconds": 0, "n_ctx": 8192}
    if base_url is not None:
        settings["base_url"] = base_url
        return asyncio.run(run_completion_bench(model, requests, file_tokens, max_tokens, server_log, settings))
    log = Path(tempfile.mkdtemp(prefix="gemma-lsp-bench-server-")) / "server.log"
    with OpenAIServer(model, log_path=log, n_ctx=8192, timing=True) as server:
        settings["base_url"] = server.url
        result = asyncio.run(
            run_completion_bench(model, requests, file_tokens, max_tokens, server_log, settings, server.timings)
        )
    hop = result.get("http_hop_ms", {}).get("p50")
    result["http_hop_target_ms"] = HOP_TARGET_MS
    result["http_hop_within_target"] = hop is not None and hop <= HOP_TARGET_MS
    return result


def _test_model(preset: str) -> Path:
    """The random-weight test model of ``preset`` in the user cache, written on first use."""
    from gemma_lsp.demo import demo_model_path
    from gemma_lsp.engine.testmodel import write_test_model

    path = demo_model_path() if preset == "tiny" else demo_model_path().with_name(f"gemma3-{preset}-random.gguf")
    if not path.exists():
        print(f"writing the {preset} test model to {path} ...", file=sys.stderr)
        write_test_model(path, arch="gemma3", preset=preset)
    return path


def run(argv: list[str] | None = None) -> SuiteRun:
    p = argparse.ArgumentParser(prog="gemma-lsp bench completion")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", type=Path, help="a Gemma GGUF (default: the tiny random test model)")
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--file-tokens", type=int, default=1500)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--server-log", type=Path, help="write the server's debug log here")
    p.add_argument(
        "--backend", choices=["llama.cpp", "openai"], default="llama.cpp",
        help="openai: also run the keystrokes through the remote backend on an OpenAI-compatible server",
    )
    p.add_argument("--base-url", help="with --backend openai: this server (default: llama-cpp-python's, started here)")
    p.add_argument("--typing", action="store_true", help="add a typing simulation on the 270m-shape test model")
    p.add_argument("--typing-model", type=Path, help="model for --typing (default: the 270m-shape random test model)")
    p.add_argument("--typing-max-tokens", type=int, default=16)
    p.add_argument("--fim-order", choices=["spm", "psm"], default="spm", help="prompt order for --typing")
    p.add_argument("--no-reuse", action="store_true", help="with --typing: also time keystrokes without KV prefix reuse")
    args = p.parse_args(argv)
    model = args.model or _test_model("tiny")
    result = asyncio.run(run_completion_bench(model, args.requests, args.file_tokens, args.max_tokens, args.server_log))
    if args.backend == "openai":
        result["openai"] = run_openai_bench(
            model, args.base_url, args.requests, args.file_tokens, args.max_tokens, args.server_log
        )
    if args.typing:
        from gemma_lsp.bench.typing import run_typing_bench

        typing_model = args.typing_model or _test_model("270m-shape")
        result["typing"] = asyncio.run(
            run_typing_bench(typing_model, args.typing_max_tokens, args.fim_order, 4 if args.no_reuse else 0)
        )
    from gemma_lsp.config import LlamaCppModelSettings

    text = "\n".join(f"{key:>22}: {value}" for key, value in result.items() if key != "latency_samples_ms")
    return SuiteRun(
        "completion", result, text, args.json, model=model, settings=suite_settings(args),
        n_ctx=LlamaCppModelSettings(path=model).n_ctx,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    print(run(argv).output())
    return 0


if __name__ == "__main__":
    sys.exit(main())
