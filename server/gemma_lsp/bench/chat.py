"""``gemma-lsp bench chat``: how fast chat answers, and what a streaming chat costs completions.

Drives ``gemma-lsp serve`` over stdio as an editor does (``lsp.client.EditorSession``), with the
workspace's memories in a SQLite file of the run's own folder:

* **ttft_ms** (p50 / p95): a ``gemma/chat`` turn about a 20-line selection of real code (another
  part of the file each turn, so each prompt differs from its start), with a
  few notes remembered first so ``rag_context`` is filled, each turn in a new session; time from
  sending the request to the first ``$/progress`` piece. ``prompt_tokens`` says how long the
  prompts were.
* **tokens_per_s**: the server's decode rate over those answers (tokens generated / decode time,
  sampling included), against **raw_decode_tokens_per_s**: the same model loaded in this process,
  one ``llama_decode`` per token on the same prompt with greedy choice and the same threads, no
  server and no sampler. Measured one after the other, never at once.
* **completion_idle_ms** (p50 / p95): keystrokes in another file, one inline completion each, with
  nothing else running (answers from the engine only: type-ahead and the answer cache cost nothing); **completion_while_chatting_ms**: the same keystrokes while a long chat
  answer streams (the completion runs between two chat tokens, on its own KV cache); their ratio
  is **completion_while_chatting_ratio**.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gemma_lsp import protocol

from .common import SuiteRun, no_config, percentiles, suite_settings

NOTES = (
    "Areas are computed in square metres; lengths come in metres.",
    "The geometry helpers never raise on a zero radius: they return 0.0.",
    "Prefer math.pi over 3.14 everywhere in this workspace.",
)
SELECTION_LINES = 20  # with the notes and the template: a prompt of about 300 tokens


def _source() -> str:
    """A small module of real-looking code to chat about."""
    parts = ['"""Geometry helpers."""\n', "import math\n\n"]
    for name, formula in (
        ("circle_area", "math.pi * radius ** 2"), ("circle_perimeter", "2 * math.pi * radius"),
        ("sphere_volume", "4 / 3 * math.pi * radius ** 3"), ("sphere_area", "4 * math.pi * radius ** 2"),
        ("cylinder_volume", "math.pi * radius ** 2 * height"),
    ):  # fmt: skip
        extra = ", height: float" if "height" in formula else ""
        parts.append(
            f"\ndef {name}(radius: float{extra}) -> float:\n"
            f'    """Return the {name.replace("_", " ")} for the given radius."""\n'
            f"    if radius < 0:\n        raise ValueError('radius must not be negative')\n"
            f"    return {formula}\n\n"
        )
    return "".join(parts)


async def _chat_turns(session, uri: str, turns: int, log) -> dict[str, Any]:
    text = _source()
    lines = text.count("\n")
    ttft, tps, prompt_tokens = [], [], []
    for i in range(turns):
        # Another part of the file each turn: the prompt differs from its start, as a new question
        # about other code does, so little of it is found in the KV cache.
        first_line = (i * 5) % max(1, lines - SELECTION_LINES)
        selection = {"start": {"line": first_line, "character": 0},
                     "end": {"line": min(lines, first_line + SELECTION_LINES), "character": 0}}
        started = time.perf_counter()
        first: list[float] = []
        token = f"ttft-{i}"
        session.partial[token] = []

        async def watch() -> None:
            while not session.partial.get(token):
                await asyncio.sleep(0.002)
            first.append((time.perf_counter() - started) * 1000)

        watcher = asyncio.ensure_future(watch())
        result = await session.request(protocol.CHAT, {
            "message": "What does this module do, and what would you test first?", "uri": uri, "range": selection,
            "template": "ask", "partialResultToken": token,
        })  # fmt: skip
        watcher.cancel()
        session.partial.pop(token, None)
        stats = result["stats"]
        # Each turn starts clean: its turns would otherwise come back in the next prompt as memories.
        await session.request(protocol.CHAT_RESET, {"session": result["session"]})
        ttft.append(first[0] if first else stats["ttft_ms"])
        if stats.get("tokens_per_s"):
            tps.append(stats["tokens_per_s"])
        prompt_tokens.append(stats["prompt_tokens"])
        log(f"chat {i + 1}/{turns}: first piece {ttft[-1]:.0f} ms, {stats['prompt_tokens']} prompt tokens, "
            f"{stats.get('tokens_per_s')} tokens/s")
    return {
        "ttft_ms": percentiles(ttft),
        "tokens_per_s": round(statistics.median(tps), 2) if tps else None,
        "prompt_tokens": {"p50": statistics.median(prompt_tokens), "max": max(prompt_tokens)},
    }


TYPED = "zq = wk(radius) + vx(radius) - jy(radius) * qz(radius)"  # names the model will not guess


async def _keystrokes(session, uri: str, text: str, n: int) -> tuple[list[float], str]:
    """Type ``n`` characters at the end of ``text`` in ``uri``, one inline completion each: the
    latencies (ms) of the answers that came from the engine (not from type-ahead or the answer
    cache, which cost nothing either way), and the text afterwards."""
    line = text.count("\n")
    col = len(text) - (text.rfind("\n") + 1)
    times = []
    for i in range(n):
        ch = TYPED[i % len(TYPED)]
        session.insert(uri, line, col, ch)
        text += ch
        col += 1
        t0 = time.perf_counter()
        await session.inline(uri, line, col)
        elapsed = (time.perf_counter() - t0) * 1000
        if ((await session.stats()).get("completion") or {}).get("last", {}).get("source") == "engine":
            times.append(elapsed)
    return times, text


async def run_ours(model: str, turns: int, keystrokes: int, workdir: Path, log) -> dict[str, Any]:
    from gemma_lsp.lsp.client import EditorSession, file_uri

    root = workdir / "ws"
    root.mkdir()
    (root / "geometry.py").write_text(_source())
    session = EditorSession(
        settings={
            "model": {"path": model, "idle_unload_seconds": 0},
            "chat": {"max_tokens": 96},
            "memory": {"sqlite_path": str(workdir / "m.sqlite3"), "journal_dir": str(workdir / "j")},
            "index": {"enabled": False},
        },
        root=root, server_args=no_config(workdir),
    )
    await session.start()
    try:
        stats = await session.wait_until_loaded()
        if stats.get("load_error"):
            raise RuntimeError(stats["load_error"])
        for note in NOTES:
            await session.execute(protocol.MEMORY_REMEMBER, {"text": note, "tags": ["geometry"]})
        geometry = file_uri(root / "geometry.py")
        session.open(geometry, _source())
        report = await _chat_turns(session, geometry, turns, log)

        work = file_uri(root / "work.py")
        base = "from geometry import circle_area, sphere_area\n\n\ndef report(radius):\n    "
        session.open(work, base)
        await session.inline(work, 4, 4)  # warm: the completion's prompt in its cache
        idle, typed = await _keystrokes(session, work, base, keystrokes)
        log(f"completion idle: p50 {statistics.median(idle):.0f} ms")

        session.change_settings({"chat": {"max_tokens": 600}})  # a long answer, streaming during the keystrokes
        long_chat = asyncio.ensure_future(session.request(protocol.CHAT, {
            "message": "Write a long, detailed review of this module, function by function.",
            "uri": geometry, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 20, "character": 0}},
        }))  # fmt: skip
        await asyncio.sleep(0.5)  # the chat answer is streaming
        busy, _ = await _keystrokes(session, work, typed, keystrokes)
        chat_running = not long_chat.done()
        await long_chat
        after = await session.stats()
        log(f"completion while chatting: p50 {statistics.median(busy):.0f} ms (chat still running: {chat_running})")
        report.update({
            "completion_idle_ms": percentiles(idle),
            "completion_while_chatting_ms": percentiles(busy),
            "completion_while_chatting_ratio": round(statistics.median(busy) / statistics.median(idle), 3),
            "chat_was_streaming": chat_running,
            "interleaved": after.get("interleaved"),
        })  # fmt: skip
        return report
    finally:
        await session.stop()


def raw_decode_tokens_per_s(model: str, tokens: int = 96) -> float:
    """Decode rate of the model alone: one llama_decode per greedy token, no server, no sampler."""
    import numpy as np

    from gemma_lsp.config import LlamaCppModelSettings
    from gemma_lsp.engine.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend.load(LlamaCppModelSettings(path=model, n_ctx=2048))
    try:
        backend.tune()  # the same thread choice as the server's
        prompt = [backend.special.bos, *backend.tokenize(_source())][:300]
        logits = backend.eval(prompt).logits
        started = time.perf_counter()
        for _ in range(tokens):
            logits = backend.extend([int(np.argmax(logits))]).logits
        return tokens / (time.perf_counter() - started)
    finally:
        backend.close()


def run_chat_bench(model: str, turns: int = 5, keystrokes: int = 12, log=lambda m: None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gemma-lsp-bench-chat-") as tmp:
        report: dict[str, Any] = {"suite": "chat", "model": model, "turns": turns, "keystrokes": keystrokes}
        report.update(asyncio.run(run_ours(model, turns, keystrokes, Path(tmp), log)))
    raw = raw_decode_tokens_per_s(model)
    report["raw_decode_tokens_per_s"] = round(raw, 2)
    if report.get("tokens_per_s"):
        report["tokens_per_s_vs_raw"] = round(report["tokens_per_s"] / raw, 3)
    report["targets"] = {
        "completion_while_chatting_le_1_5x_idle": report["completion_while_chatting_ratio"] <= 1.5,
        "ttft_le_1000ms": (report["ttft_ms"]["p50"] or 1e9) <= 1000,
        "tokens_per_s_within_10pct_of_raw": report.get("tokens_per_s_vs_raw", 0) >= 0.9,
    }
    return report


def run(argv: list[str] | None = None) -> SuiteRun:
    p = argparse.ArgumentParser(prog="gemma-lsp bench chat", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="gemma3-270m", help="a named model or a Gemma GGUF (default: gemma3-270m)")
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--keystrokes", type=int, default=12)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    log = (lambda m: None) if args.quiet else (lambda m: print(f"[bench chat] {m}", file=sys.stderr, flush=True))
    report = run_chat_bench(args.model, args.turns, args.keystrokes, log)
    text = "\n".join(f"{key:>34}: {value}" for key, value in report.items())
    from gemma_lsp.config import LlamaCppModelSettings

    n_ctx = LlamaCppModelSettings().n_ctx
    return SuiteRun("chat", report, text, args.json, model=args.model, settings=suite_settings(args), n_ctx=n_ctx)


def main(argv: list[str] | None = None) -> int:
    print(run(argv).output())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
