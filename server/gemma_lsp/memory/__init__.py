"""Memories: what the server remembers per workspace (see docs/memory.md).

``open_store(settings)`` gives the store the settings ask for: the embedded SQLite store when no
Redis URL is set, else the Redis store wrapped in ``ResilientStore`` (degraded mode + journal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .embedded import EmbeddedMemoryStore
from .errors import MemoryUnavailable
from .model import Change, Kind, Memory, Position, Range, Source, Tier, content_hash, memory_id, namespace_for_workspace
from .redis_store import RedisMemoryStore, parse_redis_url
from .resilient import Journal, ResilientStore
from .settings import MemorySettings, TierTTLs
from .store import MemoryStore

__all__ = [
    "Change", "EmbeddedMemoryStore", "Journal", "Kind", "Memory", "MemorySettings", "MemoryStore",
    "MemoryUnavailable", "Position", "Range", "RedisMemoryStore", "ResilientStore", "Source", "Tier",
    "TierTTLs", "content_hash", "memory_id", "namespace_for_workspace", "open_store", "parse_redis_url",
]  # fmt: skip


def journal_path_for(settings: MemorySettings):
    """One journal file per Redis URL and prefix, so two setups never replay into each other."""
    digest = hashlib.sha256(f"{settings.url}\0{settings.prefix}".encode()).hexdigest()[:16]
    return settings.journal_dir / f"{digest}.jsonl"


def open_store(
    settings: MemorySettings | None = None,
    *,
    on_degraded: Callable[[str], None] | None = None,
    on_recovered: Callable[[], None] | None = None,
) -> MemoryStore:
    """The configured store. Opening a Redis store does not connect; it never fails for Redis being down."""
    settings = settings or MemorySettings()
    if settings.url is None:
        return EmbeddedMemoryStore(settings)
    return ResilientStore(
        RedisMemoryStore(settings),
        journal_path_for(settings),
        retry_interval=settings.retry_interval,
        on_degraded=on_degraded,
        on_recovered=on_recovered,
    )
