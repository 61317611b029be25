"""The workspace indexer: the workspace's code and docs as ``semantic`` memories, kept current.

- Crawls the workspace honouring ``.gitignore`` files (at any depth, via ``pathspec``) and a
  built-in deny list: VCS and dependency folders, virtualenvs, build outputs, binary files,
  files over a size cap, and secrets (``secrets.py``): files named like one are never opened,
  files whose text holds a key or token are skipped whole; both are counted, never stored.
- Chunks each file along its top-level definitions where a tree-sitter grammar is available
  (``chunking.py``), in overlapping line windows otherwise; each chunk knows its file and range,
  and carries the tags ``path:<relative path>`` and ``sha:<file hash>``.
- Re-indexes only files whose content hash changed (the hash is read back from the store's
  tags, so the store stays the one source of truth); a deleted file's chunks leave the store.
- A watchdog observer plus the server's didSave/didChange hooks feed a debounced queue.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from gemma_lsp.uri import path_to_uri

from .chunking import chunk_file
from .model import Kind, Memory, Position, Range, Source, Tier
from .secrets import SecretRules
from .settings import IndexSettings
from .store import MemoryStore

log = logging.getLogger(__name__)

DENIED_DIRS = (
    ".git", ".hg", ".svn", "node_modules", "bower_components", ".venv", "venv", "env", "__pycache__",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", "dist", "build", "target", "out",
    ".next", ".gradle", ".idea", ".vscode", "site-packages", ".cache", "coverage", ".eggs",
)
DENIED_FILES = ("*.min.js", "*.map", "*.lock", "package-lock.json", "*.pyc", "*.so", "*.dll", "*.exe")


@dataclass
class IndexProgress:
    files_done: int = 0
    files_total: int = 0
    chunks_written: int = 0
    files_skipped: int = 0
    secrets_skipped: int = 0  # files left out because their name or content is a secret's


@dataclass
class WorkspaceIndexer:
    root: Path
    store: MemoryStore
    namespace: str
    settings: IndexSettings = field(default_factory=IndexSettings)
    _pending: dict[Path, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _observer: object | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # relative path -> why it is a secret (never its text)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.rules = SecretRules(tuple(self.settings.secret_patterns_extra), tuple(self.settings.allow_secret_files))

    def _secret_name(self, path: Path) -> bool:
        """Whether ``path``'s name (or a folder above it in the workspace) marks it as a secret."""
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            rel = path.as_posix()
        if self.rules.named_secret(rel):
            self.secrets[rel] = "its name"
            return True
        return False

    # -------------------------------------------------------------- crawling
    def files(self) -> Iterator[Path]:
        """Every file the index may read, honouring .gitignore files and the deny lists."""
        extra = pathspec.GitIgnoreSpec.from_lines([*DENIED_FILES, *self.settings.deny])
        specs: list[tuple[Path, pathspec.PathSpec]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            gitignore = here / ".gitignore"
            if gitignore.is_file() and not gitignore.is_symlink():
                try:
                    specs.append((here, pathspec.GitIgnoreSpec.from_lines(gitignore.read_text(errors="replace").splitlines())))
                except OSError:
                    pass
            dirnames[:] = sorted(
                d for d in dirnames
                if d not in DENIED_DIRS and not (here / d).is_symlink() and not self._ignored(here / d, specs, extra, True)
            )
            for name in sorted(filenames):
                path = here / name
                if self._secret_name(path) or path.is_symlink() or self._ignored(path, specs, extra, False):
                    continue
                yield path

    def _ignored(self, path: Path, specs, extra, is_dir: bool) -> bool:
        rel = path.relative_to(self.root).as_posix() + ("/" if is_dir else "")
        if extra.match_file(rel):
            return True
        for base, spec in specs:
            if base == path or base not in path.parents:
                continue
            if spec.match_file(path.relative_to(base).as_posix() + ("/" if is_dir else "")):
                return True
        return False

    def read(self, path: Path) -> str | None:
        """The text of ``path`` when it is an indexable text file, else None: never a secret's, by
        name (the file is not opened) or by content (the file is skipped whole)."""
        if self._secret_name(path):
            return None
        try:
            if path.stat().st_size > self.settings.max_file_bytes or not path.is_file():
                return None
            data = path.read_bytes()
        except OSError:
            return None
        if b"\0" in data[:8192]:
            return None  # binary
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        rel = self.rel(path)
        kind = self.rules.secret_content(rel, text)
        if kind is not None:
            self.secrets[rel] = kind
            log.warning("not indexing %s: it holds %s", rel, kind)
            return None
        self.secrets.pop(rel, None)
        return text

    # -------------------------------------------------------------- indexing
    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def stored_hash(self, rel: str) -> tuple[str | None, list[str]]:
        """The file hash the store has for ``rel`` and the ids of its chunks."""
        chunks = self.store.query(self.namespace, tiers=[Tier.semantic], tags=[f"path:{rel}"])
        hashes = {t[4:] for m in chunks for t in m.tags if t.startswith("sha:")}
        return (hashes.pop() if len(hashes) == 1 else None), [m.id for m in chunks]

    def index_file(self, path: Path) -> int:
        """(Re-)index one file; returns the chunks written (0 when unchanged or not indexable)."""
        path = Path(path)
        rel = self.rel(path)
        text = self.read(path) if path.exists() else None
        old_hash, old_ids = self.stored_hash(rel)
        if text is None:
            if old_ids:
                self.store.delete(self.namespace, old_ids)
            return 0
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        if digest == old_hash:
            return 0
        uri = path_to_uri(path.resolve())
        memories = [
            Memory(
                namespace=self.namespace,
                tier=Tier.semantic,
                kind=Kind.doc if path.suffix.lower() in (".md", ".rst", ".txt") else Kind.code_chunk,
                text=chunk.text,
                source=Source(uri=uri, range=Range(start=Position(line=chunk.start_line, character=0),
                                                   end=Position(line=chunk.end_line, character=0))),
                tags=(f"path:{rel}", f"sha:{digest}"),
                importance=0.5,
            )
            for chunk in chunk_file(path.suffix, text, self.settings.chunk_lines, self.settings.overlap_lines)
        ]
        new_ids = set(self.store.put_many(memories))
        stale = [i for i in old_ids if i not in new_ids]
        if stale:
            self.store.delete(self.namespace, stale)
        return len(memories)

    def remove_file(self, path: Path) -> None:
        _, ids = self.stored_hash(self.rel(Path(path)))
        if ids:
            self.store.delete(self.namespace, ids)

    def index_all(self, progress: Callable[[IndexProgress], None] | None = None) -> IndexProgress:
        """Index every file; files that vanished since the last run leave the store."""
        if self.settings.allow_secret_files:
            log.warning(
                "index.allow_secret_files lets files matching %s be indexed even if they look like secrets",
                ", ".join(self.settings.allow_secret_files),
            )
        self.secrets.clear()
        files = list(self.files())
        state = IndexProgress(files_total=len(files))
        seen = set()
        for path in files:
            seen.add(self.rel(path))
            written = self.index_file(path)
            state.files_done += 1
            state.chunks_written += written
            state.secrets_skipped = len(self.secrets)
            if progress:
                progress(state)
        indexed = {t[5:] for m in self.store.query(self.namespace, tiers=[Tier.semantic]) for t in m.tags if t.startswith("path:")}
        for rel in indexed - seen:
            self.remove_file(self.root / rel)
        state.secrets_skipped = len(self.secrets)
        if self.secrets:
            log.info("left %d secret file(s) out of the index: %s", len(self.secrets), ", ".join(sorted(self.secrets)))
        return state

    # -------------------------------------------------------------- keeping current
    def schedule(self, path: Path) -> None:
        """Note that ``path`` changed; :meth:`flush` indexes it once it has been quiet a while."""
        path = Path(path)
        if self.root not in path.resolve().parents:
            return
        with self._lock:
            self._pending[path] = time.monotonic()

    def flush(self, now: float | None = None) -> int:
        """Index the scheduled files that have been quiet for ``debounce_seconds``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [p for p, t in self._pending.items() if now - t >= self.settings.debounce_seconds]
            for p in due:
                del self._pending[p]
        done = 0
        for path in due:
            if path.is_file() and self.allowed(path):
                self.index_file(path)
            else:
                self.remove_file(path)
            done += 1
        return done

    def allowed(self, path: Path) -> bool:
        """Whether the crawl would index ``path`` (deny lists and every .gitignore above it)."""
        path = Path(path).resolve()
        if self.root not in path.parents or path.is_symlink() or self._secret_name(path):
            return False
        rel_parts = path.relative_to(self.root).parts
        if any(part in DENIED_DIRS for part in rel_parts[:-1]):
            return False
        extra = pathspec.GitIgnoreSpec.from_lines([*DENIED_FILES, *self.settings.deny])
        specs = []
        here = self.root
        for part in (None, *rel_parts[:-1]):
            if part is not None:
                if self._ignored(here / part, specs, extra, True):
                    return False
                here = here / part
            gitignore = here / ".gitignore"
            if gitignore.is_file():
                try:
                    specs.append((here, pathspec.GitIgnoreSpec.from_lines(gitignore.read_text(errors="replace").splitlines())))
                except OSError:
                    pass
        return not self._ignored(path, specs, extra, False)

    def watch(self) -> None:
        """Start a watchdog observer that schedules changed files (call :meth:`flush` periodically)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        indexer = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.is_directory:
                    return
                for attr in ("src_path", "dest_path"):
                    value = getattr(event, attr, None)
                    if value:
                        indexer.schedule(Path(os.fsdecode(value)))

        observer = Observer()
        observer.schedule(Handler(), str(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
