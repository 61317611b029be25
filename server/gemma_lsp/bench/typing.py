"""Typing simulation: what a user feels while typing into a file (``bench completion --typing``).

Through the real server over stdio, as an editor: one keystroke every 80 ms (with a pause
after each word, as people pause), a didChange and an inline-completion request after each
keystroke, and ``$/cancelRequest`` for the previous request if it is still unanswered. It
measures, per answered keystroke, the latency and the prompt tokens the engine evaluated, and
counts results delivered for requests that had already been overtaken (stale).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from .common import bench_file, functions_for, no_config, percentiles

# What the user types at the cursor: "\b" is a backspace (a typo, then its correction).
SCRIPT = "total = sum(vlaues\b\b\b\b\balues)\nif total > limit:\n    return total\n"
KEYSTROKE_S = 0.080
PAUSE_S = 0.6  # after a space or a newline

def make_file(target_tokens: int, tokenize) -> tuple[str, int]:
    """A Python file of about ``target_tokens`` tokens, and a cursor on an empty line in the middle."""
    functions = functions_for(target_tokens, tokenize)
    middle = max(1, len(functions) // 2)
    head = '"""Reports."""\n' + "".join(functions[:middle]) + "\ndef check(values, limit):\n    "
    tail = "\n\n" + "".join(functions[middle:])
    return head + tail, len(head)


@dataclass
class _Editor:
    """The client side of one typing run: local text, cursor, requests in flight."""

    session: Any
    uri: str
    text: str
    offset: int
    sent: dict[str, float] = field(default_factory=dict)
    superseded_at: dict[str, float] = field(default_factory=dict)
    answered: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    stale_delivered: int = 0
    ids = itertools.count()

    def position(self) -> tuple[int, int]:
        line = self.text.count("\n", 0, self.offset)
        return line, self.offset - (self.text.rfind("\n", 0, self.offset) + 1)

    def keystroke(self, ch: str) -> None:
        line, col = self.position()
        if ch == "\b":
            if col == 0:
                return
            self.text = self.text[: self.offset - 1] + self.text[self.offset :]
            self.offset -= 1
            start, new = (line, col - 1), ""
        else:
            self.text = self.text[: self.offset] + ch + self.text[self.offset :]
            self.offset += 1
            start, new = (line, col), ch
        self.session.replace(self.uri, start, (line, col), new)

    async def request(self) -> None:
        now = time.perf_counter()
        for old in list(self.sent):
            if old not in self.superseded_at:
                self.superseded_at[old] = now
                self.session.cancel_request(old)
        msg_id = f"k{next(self.ids)}"
        line, col = self.position()
        self.sent[msg_id] = now
        key = (self.offset, len(self.text))
        future = self.session.send_inline(self.uri, line, col, msg_id)
        future.add_done_callback(lambda f: self._done(msg_id, key, f))

    def _done(self, msg_id: str, key: tuple[int, int], future: asyncio.Future) -> None:
        received = time.perf_counter()
        sent = self.sent.pop(msg_id)
        if future.cancelled() or future.exception() is not None:
            self.cancelled += 1
            return
        if msg_id in self.superseded_at:
            self.stale_delivered += 1  # a result for a request the user had already typed past
            return
        self.answered.append({"latency_ms": (received - sent) * 1000, "key": key})

    async def drain(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


async def _typing_run(model: Path, file_tokens: int, settings: dict[str, Any], script: str, pause: bool) -> dict[str, Any]:
    from gemma_lsp.lsp.client import EditorSession, file_uri

    workdir, path, text, cursor, n_file_tokens = bench_file(model, make_file, file_tokens, "gemma-lsp-typing-")
    session = EditorSession(settings=settings, server_args=no_config(workdir))
    await session.start()
    try:
        uri = file_uri(path)
        session.open(uri, text)
        stats = await session.wait_until_loaded()
        if stats.get("load_error"):
            raise RuntimeError(stats["load_error"])
        editor = _Editor(session, uri, text, cursor)
        await editor.request()  # the cold prompt, before the user starts typing
        await editor.drain()
        editor.answered.clear()
        before = (await session.stats())["completion"]
        for ch in script:
            editor.keystroke(ch)
            await editor.request()
            await asyncio.sleep(KEYSTROKE_S if not (pause and ch in " \n") else PAUSE_S)
            if not pause:
                await editor.drain()
        await editor.drain()
        after = await session.stats()
    finally:
        await session.stop()
    history = {(h["offset"], h["text_len"]): h for h in after["completion"]["history"]}
    matched = [(a, history[a["key"]]) for a in editor.answered if a["key"] in history]
    evaluated = [h["tokens_evaluated"] for _, h in matched]
    from_engine = [a["latency_ms"] for a, h in matched if h["source"] == "engine"]
    comp = after["completion"]
    served = comp["requests"] - before["requests"]
    hits = (comp["cache_hits"] - before["cache_hits"]) + (comp["type_ahead_hits"] - before["type_ahead_hits"])
    return {
        "file_tokens": n_file_tokens,
        "keystrokes": len(script),
        "answered": len(editor.answered),
        "cancelled": editor.cancelled,
        "latency_ms": percentiles([a["latency_ms"] for a in editor.answered]),
        "engine_answered_latency_ms": percentiles(from_engine),
        "tokens_evaluated": {"p50": statistics.median(evaluated) if evaluated else None},
        "stale_delivered": editor.stale_delivered,
        "cache_hit_rate": round(hits / served, 3) if served else 0.0,
    }


async def run_typing_bench(model: Path, max_tokens: int = 16, fim_order: str = "spm", no_reuse_keystrokes: int = 4) -> dict[str, Any]:
    settings = {
        "model": {"path": str(model), "idle_unload_seconds": 0},
        "completion": {"max_tokens": max_tokens, "fim_order": fim_order},
    }
    small = await _typing_run(model, 200, settings, SCRIPT, pause=True)
    large = await _typing_run(model, 4000, settings, SCRIPT, pause=True)
    result: dict[str, Any] = {
        "model": str(model),
        "fim_order": fim_order,
        "max_tokens": max_tokens,
        "small": small,
        "large": large,
        # The headline figures, from the ~4,000-token file:
        "keystrokes": large["keystrokes"],
        "latency_ms": large["latency_ms"],
        "stale_delivered": small["stale_delivered"] + large["stale_delivered"],
        "cache_hit_rate": large["cache_hit_rate"],
        "tokens_evaluated": large["tokens_evaluated"],
        "size_ratio": _ratio(large["latency_ms"]["p50"], small["latency_ms"]["p50"]),
    }
    if no_reuse_keystrokes:
        slow_settings = {**settings, "model": {**settings["model"], "kv_reuse": False}}
        script = "xyzw(q"[:no_reuse_keystrokes]
        reuse = await _typing_run(model, 4000, settings, script, pause=False)
        no_reuse = await _typing_run(model, 4000, slow_settings, script, pause=False)
        # Keystrokes answered by the engine only: type-ahead and cache answers need no KV cache.
        result["no_reuse"] = {
            "keystrokes": len(script),
            "latency_ms": no_reuse["engine_answered_latency_ms"],
            "tokens_evaluated": no_reuse["tokens_evaluated"],
            "with_reuse_latency_ms": reuse["engine_answered_latency_ms"],
            "slowdown_p50": _ratio(
                no_reuse["engine_answered_latency_ms"]["p50"], reuse["engine_answered_latency_ms"]["p50"]
            ),
        }
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None
