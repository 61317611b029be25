"""``gemma-lsp demo``: start the real server over stdio and drive it as an editor would."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from gemma_lsp import protocol
from gemma_lsp.config import DEFAULT_MODEL

SAMPLE = (
    '"""A small module to complete in."""\n'
    "\n"
    "\n"
    "def fibonacci(n: int) -> int:\n"
    '    """Return the n-th Fibonacci number."""\n'
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n"
    "\n"
    "\n"
    "def is_prime(n: int) -> bool:\n"
    '    """Return True when n is a prime number."""\n'
    "    if n < 2:\n"
    "        return False\n"
    "    \n"
)
# The cursor: the empty, indented line at the end of is_prime.
CURSOR = (15, 4)


def demo_model_path() -> Path:
    from gemma_lsp.config import default_cache_dir

    return default_cache_dir() / "models" / "gemma3-tiny-random.gguf"


RANDOM = "random"  # --model random: the tiny random-weight test model


def run_demo(model: str | None, base_urls: list[str] | None = None) -> int:
    return asyncio.run(_demo(model, base_urls or []))


def _choose_model(model: str | None) -> str:
    """The model to run and a word about it: the default named model, the random one, or a file."""
    if model == RANDOM:
        path = demo_model_path()
        if not path.exists():
            from gemma_lsp.engine.testmodel import write_test_model

            write_test_model(path, arch="gemma3", preset="tiny")
        print(
            f"The demo uses a tiny Gemma 3-architecture model with RANDOM weights\n"
            f"  ({path}).\n"
            f"  Its suggestions are nonsense text; everything around them is the real path: the LSP server,\n"
            f"  the in-process llama.cpp engine, the prompts, cancellation.\n"
            f"  Without --model the demo runs {DEFAULT_MODEL}, a real Gemma.\n"
        )
        return str(path)
    if model is None:
        print(
            f"Model: {DEFAULT_MODEL}, Google's Gemma 3 270M (base, Q4_K_M), installed from PyPI by make; "
            f"Gemma terms apply\n  (https://ai.google.dev/gemma/terms). Another: gemma-lsp demo --model path/to/model.gguf\n"
        )
        return DEFAULT_MODEL
    print(f"Model: {model}\n")
    return model


async def _demo(model: str | None, base_urls: list[str]) -> int:
    from gemma_lsp.lsp.client import EditorSession, file_uri

    started = time.perf_counter()
    if base_urls:
        print(f"Model: the one served by {', '.join(base_urls)} (the remote backend)\n")
        model_settings = {"backend": "openai", "base_url": base_urls[0], "base_urls": base_urls[1:]}
    else:
        model_settings = {"backend": "llama.cpp", "path": _choose_model(model)}

    workdir = Path(tempfile.mkdtemp(prefix="gemma-lsp-demo-"))
    source = workdir / "sample.py"
    source.write_text(SAMPLE)
    uri = file_uri(source)

    # Memories in the embedded store (SQLite), kept inside the demo's folder.
    settings = {
        "model": model_settings,
        "completion": {"max_tokens": 24, "max_lines": 3},
        "memory": {"sqlite_path": str(workdir / "memories.sqlite3"), "journal_dir": str(workdir / "journal")},
    }
    session = EditorSession(settings=settings, root=workdir)
    print("Starting `gemma-lsp serve` over stdio and initializing...")
    init = await session.start()
    caps = init.capabilities
    print(
        f"  server {init.server_info.name} {init.server_info.version}: "
        f"inlineCompletion={'yes' if caps.inline_completion_provider else 'no'}, "
        f"completion={'yes' if caps.completion_provider else 'no'}"
    )
    try:
        session.open(uri, SAMPLE)
        line, col = CURSOR
        print(f"Opened {source.name}; asking for an inline completion at line {line + 1}, column {col + 1}:")
        lines = SAMPLE.split("\n")
        lines[line] = lines[line][:col] + "\u2588" + lines[line][col:] + "   <- cursor"
        print("\n".join(f"    {i + 1:>3} | {text}" for i, text in enumerate(lines[: line + 1])))
        t0 = time.perf_counter()
        inline = await session.inline(uri, line, col)
        first_result_ms = (time.perf_counter() - started) * 1000
        inline_ms = (time.perf_counter() - t0) * 1000
        stats = await session.stats()
        if stats.get("load_error"):
            print(f"\nThe model did not load: {stats['load_error']}")
            return 1
        _show_inline(inline, inline_ms)
        print(f"  {_how_served(stats)}")

        t0 = time.perf_counter()
        completion = await session.complete(uri, line, col)
        completion_ms = (time.perf_counter() - t0) * 1000
        items = completion.items if completion else []
        print(f"\ntextDocument/completion ({completion_ms:.0f} ms): {len(items)} item(s)")
        for item in items:
            print(f"  label: {item.label!r}")
            print(f"  edit:  {item.text_edit.new_text!r} at {_fmt_range(item.text_edit.range)}")
        stats = await session.stats()
        print(f"  {_how_served(stats)}")

        # One keystroke later: the engine evaluates only what changed.
        session.insert(uri, line, col, "r")
        t0 = time.perf_counter()
        await session.inline(uri, line, col + 1)
        keystroke_ms = (time.perf_counter() - t0) * 1000
        stats = await session.stats()
        print(f"\nAfter typing one character, inlineCompletion again ({keystroke_ms:.0f} ms):")
        print(f"  {_how_served(stats)}")

        await _show_prompt(session, uri)

        info = stats.get("model") or {}
        print("\nTimings")
        if stats.get("remote"):
            print(f"  connect:           {stats.get('last_load_ms') or 0:.0f} ms (backend {stats.get('backend')})")
        else:
            print(f"  model load:        {stats.get('last_load_ms') or 0:.0f} ms "
                  f"({info.get('architecture')}, {info.get('n_params', 0) / 1e6:.2f}M parameters)")
        print(f"  first result:      {first_result_ms:.0f} ms after start (server start, initialize, load included)")
    finally:
        await session.stop()
    print(f"  total:             {(time.perf_counter() - started) * 1000:.0f} ms")
    for message in session.messages:
        print(f"  server said: {message}")
    return 0


async def _show_prompt(session, uri: str) -> None:
    """Remember a note, then render the 'explain' template for is_prime: the note comes back in it."""
    note = "Primes: 0 and 1 are not prime, and neither is any negative number."
    await session.execute(protocol.MEMORY_REMEMBER, {"text": note, "tags": ["math"]})
    first = SAMPLE.split("\n").index("def is_prime(n: int) -> bool:")
    selection = {"start": {"line": first, "character": 0}, "end": {"line": CURSOR[0], "character": 0}}
    rendered = await session.execute(protocol.PROMPT_RENDER, {"template": "explain", "uri": uri, "range": selection})
    print(f"\nRemembered a note, then rendered the 'explain' prompt for is_prime "
          f"({rendered['context_ms']:.1f} ms to retrieve its memories; template {rendered['path']}):")
    print("\n".join(f"    | {text}" for text in rendered["text"].rstrip("\n").split("\n")))


def _how_served(stats: dict) -> str:
    last = (stats.get("completion") or {}).get("last") or {}
    source = last.get("source")
    remote = stats.get("remote")
    if source == "engine" and remote:
        request = remote.get("last_request") or {}
        servers = "; ".join(
            f"{e['url']} {e['state']}"
            + (f", {e['latency_ms']:.1f} ms to the first byte" if e.get("latency_ms") is not None else "")
            + (f" ({e['last_error']})" if e.get("last_error") else "")
            for e in remote.get("endpoints") or []
        )
        return (
            f"from {request.get('endpoint')} ({remote.get('server') or 'an OpenAI-compatible server'}, "
            f"model {remote.get('model')}): {last.get('engine_ms', 0):.1f} ms, ~{last.get('prompt_tokens')} prompt "
            f"tokens, {last.get('tokens_generated')} pieces; prompt: {last.get('prompt_mode')}\n  servers: {servers}"
        )
    if source == "engine":
        mode = {"prefix": "the text before the cursor (the model has no FIM tokens)",
                "fim-spm": "fill-in-the-middle, suffix first", "fim-psm": "fill-in-the-middle, prefix first"}
        return (
            f"from the engine: {last.get('engine_ms', 0):.1f} ms, {last.get('tokens_evaluated')} of "
            f"{last.get('prompt_tokens')} prompt tokens evaluated "
            f"({(last.get('prompt_tokens') or 0) - (last.get('tokens_evaluated') or 0)} reused from the KV cache), "
            f"{last.get('tokens_generated')} generated on {last.get('threads')} thread(s); prompt: "
            f"{mode.get(last.get('prompt_mode'), last.get('prompt_mode'))}"
        )
    if source == "cache":
        return "from the answer cache (the same prompt was answered before): no engine work"
    if source == "type_ahead":
        return "from type-ahead (the user typed the start of the last suggestion): no engine work"
    return "no suggestion"


def _show_inline(result, elapsed_ms: float) -> None:
    items = result.items if result is not None else []
    print(f"\ntextDocument/inlineCompletion ({elapsed_ms:.0f} ms): {len(items)} item(s)")
    for item in items:
        print(f"  insert {item.insert_text!r} at {_fmt_range(item.range)}")


def _fmt_range(rng) -> str:
    return f"{rng.start.line + 1}:{rng.start.character + 1}-{rng.end.line + 1}:{rng.end.character + 1}"
