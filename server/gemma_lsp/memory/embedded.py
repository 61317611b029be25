"""``EmbeddedMemoryStore``: the default store, one SQLite file (WAL) in the user cache dir.

Several processes on one machine may share the file: SQLite serializes the writers and the
``changes`` table is their change feed, as the Redis stream is for a team.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import MemoryUnavailable
from .model import Change, Kind, Memory, Tier, matches
from .settings import MemorySettings
from .store import dump_source, new_origin, pack_embedding, sort_newest_first, unpack_embedding

OP_MARKER_SECONDS = 7 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    tier TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT,
    tags TEXT NOT NULL,
    importance REAL NOT NULL,
    created_at REAL NOT NULL,
    last_accessed REAL NOT NULL,
    access_count INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    embedding BLOB,
    expires_at REAL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS memories_by_tier ON memories (namespace, tier, created_at);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    op TEXT NOT NULL,
    id TEXT NOT NULL,
    origin TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_namespace ON changes (namespace, seq);
CREATE TABLE IF NOT EXISTS epochs (
    namespace TEXT PRIMARY KEY,
    epoch TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS applied_ops (
    op_key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""

_COLUMNS = (
    "namespace, id, tier, kind, text, source, tags, importance, created_at, last_accessed, "
    "access_count, content_hash, embedding"
)

_UPSERT = f"""
INSERT INTO memories ({_COLUMNS}, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace, id) DO UPDATE SET
    tier = excluded.tier,
    kind = excluded.kind,
    text = excluded.text,
    source = COALESCE(excluded.source, memories.source),
    tags = excluded.tags,
    importance = excluded.importance,
    content_hash = excluded.content_hash,
    embedding = COALESCE(excluded.embedding, memories.embedding),
    expires_at = excluded.expires_at
"""


class EmbeddedMemoryStore:
    """A ``MemoryStore`` on one SQLite file (``settings.sqlite_path``, or ``path``)."""

    def __init__(self, settings: MemorySettings | None = None, *, path: str | Path | None = None) -> None:
        self.settings = settings or MemorySettings()
        self.path = Path(path) if path is not None else self.settings.sqlite_path
        self.origin = new_origin()
        self._lock = threading.RLock()
        self._puts_since_trim = 0
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # A deleted memory's text is overwritten, not left in free pages: what leaves the store
            # (a file that turned out to hold a secret, a forgotten note) leaves the file too.
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise MemoryUnavailable(f"cannot open the memory database {self.path}: {exc}") from exc

    # -- writes -------------------------------------------------------------------------

    def put(self, memory: Memory) -> str:
        return self.put_many([memory])[0]

    def put_many(self, memories: Iterable[Memory]) -> list[str]:
        items = list(memories)
        if not items:
            return []
        now = time.time()
        rows = []
        for m in items:
            ttl = self.settings.ttl.for_tier(m.tier)
            rows.append(
                (
                    m.namespace, m.id, m.tier.value, m.kind.value, m.text, dump_source(m), json.dumps(list(m.tags)),
                    m.importance, m.created_at, m.last_accessed, m.access_count, m.content_hash,
                    pack_embedding(m.embedding), None if ttl is None else now + ttl,
                )
            )  # fmt: skip
        with self._transaction() as db:
            # A memory that expired but is still on disk starts afresh, as an expired Redis key would.
            db.executemany(
                "DELETE FROM memories WHERE namespace = ? AND id = ? AND expires_at IS NOT NULL AND expires_at <= ?",
                [(m.namespace, m.id, now) for m in items],
            )
            db.executemany(_UPSERT, rows)
            db.executemany(
                "INSERT INTO changes (namespace, op, id, origin, at) VALUES (?, 'put', ?, ?, ?)",
                [(m.namespace, m.id, self.origin, now) for m in items],
            )
        self._maybe_trim(len(items))
        return [m.id for m in items]

    def delete(self, namespace: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        now = time.time()
        with self._transaction() as db:
            db.executemany("DELETE FROM memories WHERE namespace = ? AND id = ?", [(namespace, i) for i in ids])
            db.executemany(
                "INSERT INTO changes (namespace, op, id, origin, at) VALUES (?, 'delete', ?, ?, ?)",
                [(namespace, i, self.origin, now) for i in ids],
            )

    def touch(self, namespace: str, ids: Iterable[str], *, at: float | None = None, op_id: str | None = None) -> None:
        now = time.time()
        at = now if at is None else at
        with self._transaction() as db:
            for id_ in ids:
                if op_id is not None:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO applied_ops (op_key, expires_at) VALUES (?, ?)",
                        (f"{namespace}:{op_id}:{id_}", now + OP_MARKER_SECONDS),
                    )
                    if cur.rowcount == 0:
                        continue
                db.execute(
                    "UPDATE memories SET access_count = access_count + 1, last_accessed = MAX(last_accessed, ?) "
                    "WHERE namespace = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)",
                    (at, namespace, id_, now),
                )

    # -- reads --------------------------------------------------------------------------

    def get(self, namespace: str, id: str) -> Memory | None:
        found = self.get_many(namespace, [id])
        return found[0] if found else None

    def get_many(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._read(
            f"SELECT {_COLUMNS} FROM memories WHERE namespace = ? AND id IN ({marks}) "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (namespace, *ids, time.time()),
        )
        by_id = {row[1]: _row_to_memory(row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    def query(
        self,
        namespace: str,
        *,
        tiers: Iterable[Tier | str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        tags: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Memory]:
        tiers = None if tiers is None else [Tier(t) for t in tiers]
        kinds = None if kinds is None else [Kind(k) for k in kinds]
        tags = None if tags is None else list(tags)
        sql = f"SELECT {_COLUMNS} FROM memories WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?)"
        args: list[object] = [namespace, time.time()]
        if tiers is not None:
            sql += f" AND tier IN ({','.join('?' * len(tiers))})"
            args += [t.value for t in tiers]
        if kinds is not None:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += [k.value for k in kinds]
        found = [_row_to_memory(row) for row in self._read(sql, args)]
        found = [m for m in found if matches(m, tags=tags)]
        return sort_newest_first(found, limit)

    def changes(self, namespace: str, since: str | None = None, limit: int = 1000) -> list[Change]:
        after = int(since) if since else 0
        rows = self._read(
            "SELECT seq, namespace, op, id, origin, at FROM changes WHERE namespace = ? AND seq > ? ORDER BY seq LIMIT ?",
            (namespace, after, limit),
        )
        return [Change(cursor=str(r[0]), namespace=r[1], op=r[2], id=r[3], origin=r[4], at=r[5]) for r in rows]

    # -- upkeep -------------------------------------------------------------------------

    def purge_expired(self, namespace: str) -> int:
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(
                "DELETE FROM memories WHERE namespace = ? AND expires_at IS NOT NULL AND expires_at <= ?",
                (namespace, now),
            )
            db.execute("DELETE FROM applied_ops WHERE expires_at <= ?", (now,))
            return cur.rowcount

    def epoch(self, namespace: str) -> str:
        """Set once per namespace in this file (a new file, a new epoch)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO epochs (namespace, epoch) VALUES (?, ?)", (namespace, uuid.uuid4().hex))
            return db.execute("SELECT epoch FROM epochs WHERE namespace = ?", (namespace,)).fetchone()[0]

    def ping(self) -> bool:
        self._read("SELECT 1", ())
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals ----------------------------------------------------------------------

    def _maybe_trim(self, added: int) -> None:
        self._puts_since_trim += added
        if self._puts_since_trim < 1000:
            return
        self._puts_since_trim = 0
        keep = self.settings.change_feed_max_len
        with self._transaction() as db:
            db.execute(
                "DELETE FROM changes WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER "
                "(PARTITION BY namespace ORDER BY seq DESC) AS n FROM changes) WHERE n > ?)",
                (keep,),
            )

    def _read(self, sql: str, args) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise MemoryUnavailable(f"memory database {self.path}: {exc}") from exc

    def _transaction(self):
        return _Transaction(self)


class _Transaction:
    def __init__(self, store: EmbeddedMemoryStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self.store._lock.release()
            raise MemoryUnavailable(f"memory database {self.store.path}: {exc}") from exc
        return self.store._db

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self.store._db.execute("COMMIT")
            else:
                self.store._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            if exc_type is None:
                raise MemoryUnavailable(f"memory database {self.store.path}: {err}") from err
        finally:
            self.store._lock.release()
        if exc_type is not None and issubclass(exc_type, sqlite3.Error):
            raise MemoryUnavailable(f"memory database {self.store.path}: {exc}") from exc
        return False


def _row_to_memory(row: tuple) -> Memory:
    (namespace, id_, tier, kind, text, source, tags, importance, created, accessed, count, digest, emb) = row
    return Memory(
        id=id_, namespace=namespace, tier=tier, kind=kind, text=text,
        source=None if source is None else json.loads(source), tags=json.loads(tags), importance=importance,
        created_at=created, last_accessed=accessed, access_count=count, content_hash=digest,
        embedding=unpack_embedding(emb),
    )  # fmt: skip
