"""The command line as a user runs it: demo, make-test-model, bench, serve --tcp."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

CLI = [sys.executable, "-m", "gemma_lsp"]


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def test_demo_shows_a_completion_from_the_in_process_engine():
    proc = run("demo", "--model", "random")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "RANDOM weights" in out and "--model" in out  # says plainly what it runs
    assert "prompt: fill-in-the-middle, suffix first" in out  # the test model has FIM tokens
    assert "textDocument/inlineCompletion" in out and "1 item(s)" in out
    assert "insert '" in out and "at 16:5-16:5" in out
    assert "model load:" in out and "first result:" in out and "total:" in out
    assert "from the answer cache" in out  # the completion request repeats the inline one's prompt
    after_keystroke = out.split("After typing one character")[1]
    assert "from the engine" in after_keystroke and "reused from the KV cache" in after_keystroke
    prompt = out.split("rendered the 'explain' prompt")[1]  # a remembered note comes back in a template
    assert "| # note (math)" in prompt and "| def is_prime(n: int) -> bool:" in prompt


def test_demo_runs_the_real_gemma_by_default_and_it_completes_an_obvious_function():
    """Only real weights can show this: the body of is_prime is a loop over candidate divisors."""
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Model: gemma3-270m" in out and "Gemma terms" in out
    first = out.split("textDocument/inlineCompletion")[1].split("\n")[1]
    assert "insert 'for i in range(2, n):'" in first, out  # the next line first; its body once accepted
    assert "(gemma3, 268.10M parameters)" in out
    assert "prompt: the text before the cursor (the model has no FIM tokens)" in out  # Gemma 3: no FIM


def test_demo_names_a_missing_model_in_one_sentence(tmp_path):
    missing = tmp_path / "gemma.gguf"
    proc = run("demo", "--model", str(missing))
    assert proc.returncode == 1
    assert f"Model file {missing} does not exist." in proc.stdout


@pytest.mark.parametrize("arch", ["gemma", "gemma2", "gemma3"])
def test_make_test_model_writes_each_architecture(tmp_path, arch):
    out = tmp_path / f"{arch}.gguf"
    proc = run("make-test-model", "--arch", arch, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 100_000 and "random weights" in proc.stdout


def test_make_test_model_rejects_a_vocabulary_too_small(tmp_path):
    proc = run("make-test-model", "--out", str(tmp_path / "m.gguf"), "--vocab-size", "10")
    assert proc.returncode == 2
    assert "vocab_size must be at least" in proc.stderr


def test_bench_completion_prints_one_json_object(tiny_model):
    proc = run("bench", "completion", "--json", "--model", str(tiny_model), "--requests", "3", "--file-tokens", "300")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("latency_ms", "engine_ms", "overhead_ms"):
        assert set(result[key]) == {"p50", "p95"}
    assert result["requests"] == 3
    assert 0 < result["tokens_evaluated"]["p50"] < result["cold_tokens_evaluated"]


async def test_serve_over_tcp(tiny_model, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*CLI, "serve", "--tcp", f"127.0.0.1:{port}", "--log-file", str(tmp_path / "log")])
    client = LanguageClient("test", "1")
    try:
        for _ in range(100):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        result = await client.initialize_async(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(),
                                 initialization_options={"gemma": {"model": {"path": str(tiny_model)}}})
        )
        assert result.capabilities.inline_completion_provider is not None
        client.initialized(lsp.InitializedParams())
        uri = "file:///t.py"
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text="def f():\n    ")))
        answer = await client.text_document_inline_completion_async(lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=1, character=4),
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked)))
        assert answer.items
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()
        server.terminate()
        server.wait(10)


def test_serve_rejects_a_malformed_tcp_address():
    proc = run("serve", "--tcp", "localhost")
    assert proc.returncode == 2 and "HOST:PORT" in proc.stderr


def test_memory_and_index_commands_round_trip(tmp_path):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "parser.py").write_text("def parse_config_file(path):\n    return toml.load(path)\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[memory]\nsqlite_path = "{tmp_path / "m.sqlite3"}"\njournal_dir = "{tmp_path / "j"}"\n')
    common = ["--config", str(config)]
    indexed = run("index", str(ws), *common)
    assert indexed.returncode == 0, indexed.stderr
    assert "indexed 1 files" in indexed.stdout and "1/1 files" in indexed.stderr  # the progress bar
    added = run("memory", "--workspace", str(ws), *common, "add", "Config files are TOML.", "--tags", "config")
    memory_id = added.stdout.strip()
    found = run("memory", "--workspace", str(ws), *common, "search", "parseConfigFile", "--json")
    assert "parse_config_file" in json.loads(found.stdout.splitlines()[0])["text"]
    backup = tmp_path / "backup.jsonl"
    assert run("memory", "--workspace", str(ws), *common, "export", str(backup)).returncode == 0
    assert len(backup.read_text().splitlines()) == 2
    assert "forgot 1 of 1" in run("memory", "--workspace", str(ws), *common, "forget", memory_id).stdout
    other = tmp_path / "other"
    other.mkdir()
    assert "imported 2" in run("memory", "--workspace", str(other), *common, "import", str(backup)).stdout
    listed = run("memory", "--workspace", str(other), *common, "list").stdout
    assert "Config files are TOML." in listed


def test_memory_import_names_a_missing_file(tmp_path):
    proc = run("memory", "--workspace", str(tmp_path), "import", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_prompt_render_fills_a_template_with_the_workspace_memories(tmp_path):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    source = ws / "src" / "parser.py"
    source.write_text("import toml\n\n\ndef parse_config_file(path):\n    return toml.load(path)\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[memory]\nsqlite_path = "{tmp_path / "m.sqlite3"}"\njournal_dir = "{tmp_path / "j"}"\n')
    common = ["--config", str(config)]
    run("memory", "--workspace", str(ws), *common, "add", "Config files are TOML, never YAML.", "--tags", "config")
    proc = run("prompt", *common, "render", "ask", "--workspace", str(ws), "--file", str(source), "--lines", "4-5",
               "--question", "Can config files be YAML?", "--json")
    assert proc.returncode == 0, proc.stderr
    rendered = json.loads(proc.stdout)
    assert "# note (config)\nConfig files are TOML, never YAML." in rendered["rag_context"]
    assert "from src/parser.py (lines 4-5)" in rendered["text"] and "```python\ndef parse_config_file" in rendered["text"]
    listed = run("prompt", *common, "list")
    assert listed.returncode == 0 and "explain" in listed.stdout and "error" not in listed.stdout
    missing = run("prompt", *common, "render", "explian", "--no-memories")
    assert missing.returncode == 2 and "There is no prompt template 'explian'" in missing.stderr
    outside = run("prompt", *common, "render", "explain", "--file", str(source), "--lines", "7-9", "--no-memories")
    assert outside.returncode == 2 and "--lines 7-9 is outside" in outside.stderr


def test_protocol_prints_every_custom_name_as_json():
    proc = run("protocol")
    assert proc.returncode == 0, proc.stderr
    described = json.loads(proc.stdout)
    from gemma_lsp import protocol

    assert [m["name"] for m in described] == [m.name for m in protocol.MESSAGES]
    render = next(m for m in described if m["name"] == "gemma.prompt.render")
    assert render["kind"] == "command" and "template" in render["params"]
