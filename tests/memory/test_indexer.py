"""The workspace indexer on a real temporary workspace and the embedded store."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gemma_lsp.memory import EmbeddedMemoryStore, MemorySettings, Tier
from gemma_lsp.memory.indexer import IndexSettings, WorkspaceIndexer, chunk_lines


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
    assert len(chunks) == len(chunk_lines((workspace / "app/main.py").read_text(), 10, 2))
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
