"""Degraded mode: keep working while Redis is away, and lose nothing.

``ResilientStore`` wraps a store (the Redis one). When the store raises ``MemoryUnavailable``:

- it reports it once (``on_degraded(message)``) until the store answers again (``on_recovered()``);
- writes (put, delete, touch) go to a local ``Journal`` (JSON Lines, fsync'd), in order;
- reads answer from what the journal holds (less context, never an error);
- at most every ``retry_interval`` seconds, and on ``replay()``, the journal is replayed in order.
  Replay is idempotent: a put is an upsert keyed by the content hash, a delete is a delete, and a
  touch carries an ``op_id`` the store applies at most once. A write whose reply was lost (it may
  or may not have reached Redis) is journaled too and so, replayed, still counts once.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import MemoryUnavailable
from .model import Change, Kind, Memory, Tier, matches
from .store import MemoryStore, sort_newest_first


class Journal:
    """An append-only JSON Lines file of pending writes, shared safely by processes (``flock``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def locked(self):
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, entries: Sequence[dict]) -> None:
        """Append and fsync (call under ``locked()``)."""
        data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn last line (a crash mid-append) must not swallow this entry
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict]:
        """Every complete entry; a torn last line (a crash mid-append) is skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for line in raw.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def rewrite(self, entries: Sequence[dict]) -> None:
        """Replace the journal with ``entries`` atomically (call under ``locked()``)."""
        if not entries:
            if self.pending():
                fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class ResilientStore:
    """A ``MemoryStore`` that never fails for lack of its backend; see the module docstring."""

    def __init__(
        self,
        inner: MemoryStore,
        journal_path: str | Path,
        *,
        retry_interval: float = 2.0,
        on_degraded: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.origin = inner.origin
        self.journal = Journal(journal_path)
        self.retry_interval = retry_interval
        self.on_degraded = on_degraded
        self.on_recovered = on_recovered
        self.degraded = False
        self.replayed = 0  # entries replayed so far (for stats and tests)
        self._last_attempt = float("-inf")
        self._lock = threading.RLock()

    # -- writes -------------------------------------------------------------------------

    def put(self, memory: Memory) -> str:
        return self.put_many([memory])[0]

    def put_many(self, memories: Iterable[Memory]) -> list[str]:
        items = list(memories)
        if items:
            self._write({"op": "put", "memories": [m.model_dump(mode="json") for m in items]})
        return [m.id for m in items]

    def delete(self, namespace: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self._write({"op": "delete", "namespace": namespace, "ids": ids})

    def touch(self, namespace: str, ids: Iterable[str], *, at: float | None = None, op_id: str | None = None) -> None:
        ids = list(ids)
        if ids:
            entry = {"op": "touch", "namespace": namespace, "ids": ids, "at": time.time() if at is None else at}
            entry["op_id"] = op_id or uuid.uuid4().hex  # so a lost reply + replay still counts once
            self._write(entry)

    def _write(self, entry: dict) -> None:
        with self._lock:
            if self.journal.pending():
                self._try_replay()
            if not self.journal.pending():
                try:
                    _apply(self.inner, [entry])
                    self._mark_ok()
                    return
                except MemoryUnavailable as exc:
                    self._mark_degraded(exc)
            with self.journal.locked():
                self.journal.append([entry])

    # -- reads --------------------------------------------------------------------------

    def get(self, namespace: str, id: str) -> Memory | None:
        found = self.get_many(namespace, [id])
        return found[0] if found else None

    def get_many(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        def fallback() -> list[Memory]:
            pending = self._journaled(namespace)
            return [pending[i] for i in ids if i in pending]

        return self._read(lambda: self.inner.get_many(namespace, ids), fallback)

    def query(
        self,
        namespace: str,
        *,
        tiers: Iterable[Tier | str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        tags: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Memory]:
        tiers = None if tiers is None else list(tiers)
        kinds = None if kinds is None else list(kinds)
        tags = None if tags is None else list(tags)

        def fallback() -> list[Memory]:
            found = [m for m in self._journaled(namespace).values() if matches(m, tiers, kinds, tags)]
            return sort_newest_first(found, limit)

        return self._read(
            lambda: self.inner.query(namespace, tiers=tiers, kinds=kinds, tags=tags, limit=limit), fallback
        )

    def changes(self, namespace: str, since: str | None = None, limit: int = 1000) -> list[Change]:
        return self._read(lambda: self.inner.changes(namespace, since, limit), list)

    def _read(self, call, fallback):
        with self._lock:
            if self.degraded or self.journal.pending():
                self._try_replay()
            if not self.degraded and not self.journal.pending():
                try:
                    return call()
                except MemoryUnavailable as exc:
                    self._mark_degraded(exc)
            return fallback()

    def _journaled(self, namespace: str) -> dict[str, Memory]:
        """What the journal's pending writes say about a namespace (the degraded read view)."""
        view: dict[str, Memory] = {}
        for entry in self.journal.read():
            if entry["op"] == "put":
                for raw in entry["memories"]:
                    if raw["namespace"] == namespace:
                        m = Memory.model_validate(raw)
                        view[m.id] = m
            elif entry["op"] == "delete" and entry["namespace"] == namespace:
                for id_ in entry["ids"]:
                    view.pop(id_, None)
        return view

    # -- recovery -----------------------------------------------------------------------

    def replay(self) -> bool:
        """Replay the journal now (ignoring ``retry_interval``); True when it is empty afterwards."""
        with self._lock:
            return self._try_replay(force=True)

    def _try_replay(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last_attempt < self.retry_interval:
            return False
        self._last_attempt = now
        with self.journal.locked():
            entries = self.journal.read()
            done = 0
            try:
                if not entries:
                    self.inner.ping()
                while done < len(entries):
                    batch = _next_batch(entries, done)
                    _apply(self.inner, entries[done : done + batch])
                    done += batch
            except MemoryUnavailable as exc:
                self.journal.rewrite(entries[done:])
                self.replayed += done
                self._mark_degraded(exc)
                return False
            self.journal.rewrite([])
            self.replayed += done
        self._mark_ok()
        return True

    def _mark_degraded(self, exc: Exception) -> None:
        self._last_attempt = time.monotonic()
        if not self.degraded:
            self.degraded = True
            if self.on_degraded is not None:
                self.on_degraded(
                    f"Memories are degraded: {str(exc).rstrip('.')}. Completions and chat go on with less context; "
                    "new memories are kept locally and written when the store is back."
                )

    def _mark_ok(self) -> None:
        if self.degraded:
            self.degraded = False
            if self.on_recovered is not None:
                self.on_recovered()

    # -- the rest -----------------------------------------------------------------------

    def purge_expired(self, namespace: str) -> int:
        return self._read(lambda: self.inner.purge_expired(namespace), lambda: 0)

    def epoch(self, namespace: str) -> str | None:
        """The store's epoch once the journal is replayed; None while degraded (unknown)."""
        return self._read(lambda: self.inner.epoch(namespace), lambda: None)

    def ping(self) -> bool:
        return self.inner.ping()

    def close(self) -> None:
        self.inner.close()


def _next_batch(entries: list[dict], start: int, most: int = 256) -> int:
    """Consecutive puts replay as one ``put_many`` batch; anything else one entry at a time."""
    n = 0
    total = 0
    while start + n < len(entries) and entries[start + n]["op"] == "put" and total < most:
        total += len(entries[start + n]["memories"])
        n += 1
    return max(n, 1)


def _apply(store: MemoryStore, entries: list[dict]) -> None:
    if all(e["op"] == "put" for e in entries):
        store.put_many([Memory.model_validate(raw) for e in entries for raw in e["memories"]])
        return
    for e in entries:
        if e["op"] == "put":
            store.put_many([Memory.model_validate(raw) for raw in e["memories"]])
        elif e["op"] == "delete":
            store.delete(e["namespace"], e["ids"])
        elif e["op"] == "touch":
            store.touch(e["namespace"], e["ids"], at=e["at"], op_id=e["op_id"])
