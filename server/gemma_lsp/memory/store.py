"""The one ``MemoryStore`` interface every store implements (and the contract tests check).

All calls are synchronous and short; the server calls them from a worker thread, never on the
asyncio loop. Semantics every store keeps:

- ``put`` is an upsert keyed by ``(namespace, id)``, and ``id`` comes from the text, so the same
  text in one namespace is one memory. On a re-put, ``tier``, ``kind``, ``text``, ``tags`` and
  ``importance`` are the new ones; ``source`` and ``embedding`` are the new ones when given (else
  kept); ``created_at``, ``last_accessed`` and ``access_count`` are kept. So a put applied twice
  leaves the same state as once (journal replay relies on this).
- A memory expires its tier's TTL (``MemorySettings.ttl``) after its last put; ``get`` and
  ``query`` never return an expired memory. ``touch`` does not extend the TTL.
- ``touch`` adds one access (count + last-accessed time). With an ``op_id`` it is applied at most
  once per ``(op_id, id)``, however often it is sent.
- ``changes`` lists a namespace's puts and deletes, oldest first, after a cursor. Expiry is not
  in the feed (a reader that misses a memory with ``get`` knows it is gone).
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from .model import Change, Kind, Memory, Tier


@runtime_checkable
class MemoryStore(Protocol):
    origin: str
    """A unique id of this store instance; the change feed names it as the writer."""

    def put(self, memory: Memory) -> str:
        """Store (upsert) one memory; returns its id."""
        ...

    def put_many(self, memories: Iterable[Memory]) -> list[str]:
        """Store several memories in one batch (one pipeline / one transaction); returns their ids."""
        ...

    def get(self, namespace: str, id: str) -> Memory | None: ...

    def get_many(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        """The memories that exist, in the order of ``ids``."""
        ...

    def delete(self, namespace: str, ids: Iterable[str]) -> None: ...

    def touch(self, namespace: str, ids: Iterable[str], *, at: float | None = None, op_id: str | None = None) -> None:
        """Count one access of each memory (missing ones are ignored)."""
        ...

    def query(
        self,
        namespace: str,
        *,
        tiers: Iterable[Tier | str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        tags: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Memory]:
        """Live memories of a namespace matching any of ``tiers``, any of ``kinds`` and all of ``tags``,
        newest ``created_at`` first."""
        ...

    def changes(self, namespace: str, since: str | None = None, limit: int = 1000) -> list[Change]:
        """Change-feed entries after cursor ``since`` (None = from the oldest kept), oldest first."""
        ...

    def purge_expired(self, namespace: str) -> int:
        """Drop what expiry left behind (rows / index entries); returns how many. Never needed for correctness."""
        ...

    def epoch(self, namespace: str) -> str | None:
        """An id written once when the namespace's data came to be in this store; it changes when
        the store lost that data (a Redis restarted without persistence, a deleted SQLite file), so
        whatever was derived from the old data (the search index) must be rebuilt. None = unknown
        right now (degraded)."""
        ...

    def ping(self) -> bool:
        """True when the backend answers; raises ``MemoryUnavailable`` when it does not."""
        ...

    def close(self) -> None: ...


def new_origin() -> str:
    return uuid.uuid4().hex[:16]


def pack_embedding(embedding: Sequence[float] | None) -> bytes | None:
    if embedding is None:
        return None
    return struct.pack(f"<{len(embedding)}f", *embedding)


def unpack_embedding(blob: bytes | None) -> tuple[float, ...] | None:
    if blob is None:
        return None
    return struct.unpack(f"<{len(blob) // 4}f", blob)


def dump_source(memory: Memory) -> str | None:
    return None if memory.source is None else memory.source.model_dump_json()


def load_source(raw: str | bytes | None):
    return None if not raw else json.loads(raw)


def sort_newest_first(memories: list[Memory], limit: int | None) -> list[Memory]:
    memories.sort(key=lambda m: (-m.created_at, m.id))
    return memories if limit is None else memories[:limit]
