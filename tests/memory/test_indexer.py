"""The workspace indexer on a real temporary workspace and the embedded store."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gemma_lsp.memory import EmbeddedMemoryStore, MemorySettings, Tier
from gemma_lsp.memory.chunking import chunk_file, line_chunks
from gemma_lsp.memory.indexer import IndexSettings, WorkspaceIndexer


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


@pytest.fixture
def workspace(tmp_path):
    root = tmp_path / "ws"
    write(root, "app/main.py", "".join(f"def f{i}():\n    return {i}\n" for i in range(50)))
    write(root, "app/util.ts", "export const answer = 42;\n")
    write(root, "README.md", "# Demo\n\nA workspace.\n")
    write(root, ".gitignore", "generated/\n*.log\n")
    write(root, "generated/out.py", "x = 1\n")
    write(root, "debug.log", "noise\n")
    write(root, "node_modules/lib/index.js", "module.exports = 1;\n")
    write(root, ".venv/lib/site.py", "import os\n")
    write(root, "pkg/.gitignore", "local_only.py\n")
    write(root, "pkg/local_only.py", "secret_plan = 1\n")
    write(root, "pkg/kept.py", "kept = True\n")
    write(root, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    write(root, "big.py", "x = 1\n" * 200_000)
    write(root, "certs/server.pem", "-----BEGIN PRIVATE KEY-----\n")
    write(root, "id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    # A secret that would hang the crawl if anything tried to read it: a FIFO with no writer.
    os.mkfifo(root / ".env")
    (root / "config").mkdir()
    os.mkfifo(root / "config" / ".env.local")
    return root


@pytest.fixture
def store(tmp_path):
    s = EmbeddedMemoryStore(MemorySettings(sqlite_path=tmp_path / "m.sqlite3"))
    yield s
    s.close()


def indexed_paths(store, ns="ws-test"):
    return sorted({t[5:] for m in store.query(ns, tiers=[Tier.semantic]) for t in m.tags if t.startswith("path:")})


def run_with_timeout(fn, seconds=20):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the indexer blocked (did it open a secret?)"
    return result["value"]


def test_the_crawl_honours_gitignore_deny_lists_size_binary_and_never_opens_secrets(workspace, store):
    indexer = WorkspaceIndexer(workspace, store, "ws-test", IndexSettings(max_file_bytes=100_000))
    progress = []
    state = run_with_timeout(lambda: indexer.index_all(lambda p: progress.append((p.files_done, p.files_total))))
    assert indexed_paths(store) == [".gitignore", "README.md", "app/main.py", "app/util.ts", "pkg/.gitignore", "pkg/kept.py"]
    assert progress[-1] == (state.files_total, state.files_total) and state.chunks_written > 3


def test_chunks_know_their_file_and_range(workspace, store):
    WorkspaceIndexer(workspace, store, "ws-test", IndexSettings(chunk_lines=10, overlap_lines=2)).index_all()
    chunks = store.query("ws-test", tiers=[Tier.semantic], tags=["path:app/main.py"])
    assert len(chunks) == len(chunk_file(".py", (workspace / "app/main.py").read_text(), 10, 2))
    lines = (workspace / "app/main.py").read_text().splitlines(keepends=True)
    for m in chunks:
        assert m.source.uri == (workspace / "app/main.py").resolve().as_uri()
        start, end = m.source.range.start.line, m.source.range.end.line
        assert m.text == "".join(lines[start:end])


def test_only_changed_files_are_reindexed_and_deleted_files_leave(workspace, store):
    indexer = WorkspaceIndexer(workspace, store, "ws-test")
    indexer.index_all()
    cursor = store.changes("ws-test")[-1].cursor
    write(workspace, "app/util.ts", "export const answer = 43;\n")
    (workspace / "README.md").unlink()
    indexer.index_all()
    changed = store.changes("ws-test", since=cursor)
    touched = {c.id for c in changed}
    util = {m.id for m in store.query("ws-test", tags=["path:app/util.ts"])}
    assert util <= touched  # the edited file was rewritten...
    assert not any(m.id in touched for m in store.query("ws-test", tags=["path:app/main.py"]))  # ...not the others
    assert "README.md" not in indexed_paths(store)


def test_the_watcher_reindexes_a_saved_file_after_the_debounce(workspace, store):
    indexer = WorkspaceIndexer(workspace, store, "ws-test", IndexSettings(debounce_seconds=0.2))
    indexer.index_all()
    indexer.watch()
    try:
        write(workspace, "app/new_module.py", "def fresh():\n    return 'new'\n")
        write(workspace, "generated/ignored.py", "y = 2\n")
        deadline = time.monotonic() + 10
        while "app/new_module.py" not in indexed_paths(store) and time.monotonic() < deadline:
            indexer.flush()
            time.sleep(0.05)
        assert "app/new_module.py" in indexed_paths(store)
        assert "generated/ignored.py" not in indexed_paths(store)
    finally:
        indexer.stop()


PYTHON = """import os

# The greeting, in one place.
GREETING = "hello"


@decorator
def greet(name):
    return f"{GREETING} {name}"


class Store:
    def get(self, key):
        return self.data[key]

    def put(self, key, value):
        self.data[key] = value
"""

GO = """package main

import "fmt"

// Add sums two numbers.
func Add(a, b int) int {
\treturn a + b
}

func main() {
\tfmt.Println(Add(1, 2))
}
"""


def test_chunks_follow_definitions_where_a_grammar_exists():
    chunks = chunk_file(".py", PYTHON, max_lines=8, overlap=2)
    texts = [c.text for c in chunks]
    assert any("@decorator\ndef greet" in t for t in texts)  # the decorator stays with its function
    assert any("class Store:" in t and "def put" in t for t in texts)  # the class whole
    assert not any("def greet" in t and "class Store" in t for t in texts)  # no merge past 8 lines
    go = chunk_file(".go", GO, max_lines=6, overlap=1)
    assert any("// Add sums two numbers.\nfunc Add" in c.text for c in go)  # its comment stays with it
    for source, found in ((PYTHON, chunks), (GO, go)):
        lines = source.splitlines(keepends=True)
        for c in found:
            assert c.text == "".join(lines[c.start_line : c.end_line])


def test_a_definition_larger_than_a_chunk_is_cut_into_windows_and_unknown_files_get_windows():
    big = "def big():\n" + "".join(f"    x{i} = {i}\n" for i in range(30))
    chunks = chunk_file(".py", big, max_lines=10, overlap=2)
    assert len(chunks) > 1 and all(c.end_line - c.start_line <= 10 for c in chunks)
    assert chunk_file(".txt", big, 10, 2) == line_chunks(big, 10, 2)
