"""The memory record: one piece of text the server remembers, and where it belongs.

A memory's identity is its text: ``content_hash`` is the SHA-256 of the UTF-8 text and ``id`` is
its first 32 hex digits, so the same text put twice into one namespace is one memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gemma_lsp.uri import uri_to_path_str

NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
ID_LENGTH = 32


class Tier(str, Enum):
    """How long a memory lives; each tier's default TTL comes from ``MemorySettings.ttl``."""

    working = "working"  # this session
    short_term = "short_term"
    long_term = "long_term"
    episodic = "episodic"  # chat turns, accepted completions
    semantic = "semantic"  # the workspace's code and docs index


class Kind(str, Enum):
    code_chunk = "code_chunk"
    note = "note"
    chat_turn = "chat_turn"
    accepted_completion = "accepted_completion"
    doc = "doc"


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int = Field(ge=0)
    character: int = Field(ge=0)


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Position
    end: Position

    @property
    def last_line(self) -> int:
        """The last line the range covers (0-based): one ending at column 0 does not include that line."""
        if self.end.character == 0 and self.end.line > self.start.line:
            return self.end.line - 1
        return max(self.start.line, self.end.line)


class Source(BaseModel):
    """Where a memory's text came from: a document URI and, when known, the range in it (LSP positions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(min_length=1)
    range: Range | None = None


def content_hash(text: str) -> str:
    """SHA-256 of the UTF-8 text, as 64 hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def memory_id(text: str) -> str:
    """A memory's id: the first 32 hex digits of its content hash (unique within a namespace)."""
    return content_hash(text)[:ID_LENGTH]


def namespace_for_workspace(root: str | os.PathLike[str]) -> str:
    """The namespace of a workspace: its folder name (sanitized) and a hash of its absolute path.

    Two different workspace roots never share a namespace, even with the same folder name; the
    same root (however spelled: relative, with ``..``, a ``file://`` URI) always gives the same one.
    """
    raw = os.fspath(root)
    raw = uri_to_path_str(raw) or raw
    path = Path(raw).expanduser().resolve()
    name = re.sub(r"[^a-z0-9._-]+", "-", path.name.lower()).strip("-._")[:48] or "root"
    digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:16]
    return f"{name}-{digest}"


class Memory(BaseModel):
    """One memory. ``id`` and ``content_hash`` are derived from ``text``; pass them only to check them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    namespace: str
    tier: Tier
    kind: Kind
    text: str = Field(min_length=1)
    source: Source | None = None
    tags: tuple[str, ...] = ()
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    created_at: float = Field(default_factory=time.time, description="Unix time, seconds.")
    last_accessed: float | None = Field(default=None, description="Unix time; defaults to created_at.")
    access_count: int = Field(default=0, ge=0)
    content_hash: str = ""
    embedding: tuple[float, ...] | None = Field(default=None, description="Stored as float32.")

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not NAMESPACE_RE.match(value):
            raise ValueError(f"namespace must match {NAMESPACE_RE.pattern}: {value!r}")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _normalize_tags(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError("tags must be a list of strings, not one string")
        if isinstance(value, (list, tuple, set, frozenset)):
            tags = {str(tag) for tag in value}
            if any(not tag or len(tag) > 200 for tag in tags):
                raise ValueError("a tag must be 1 to 200 characters")
            return tuple(sorted(tags))
        return value

    @model_validator(mode="after")
    def _derive(self) -> "Memory":
        digest = content_hash(self.text)
        if self.content_hash and self.content_hash != digest:
            raise ValueError("content_hash does not match the text")
        if self.id and self.id != digest[:ID_LENGTH]:
            raise ValueError("id does not match the text (an id is derived from the content hash)")
        object.__setattr__(self, "content_hash", digest)
        object.__setattr__(self, "id", digest[:ID_LENGTH])
        if self.last_accessed is None:
            object.__setattr__(self, "last_accessed", self.created_at)
        return self


ChangeOp = Literal["put", "delete"]


class Change(BaseModel):
    """One entry of a namespace's change feed. ``cursor`` is opaque: pass it back as ``since``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor: str
    namespace: str
    op: ChangeOp
    id: str
    origin: str = Field(description="The writing store's origin id (one per store instance / server process).")
    at: float


def matches(memory: Memory, tiers=None, kinds=None, tags=None) -> bool:
    """The query filter shared by every store: any of ``tiers``, any of ``kinds``, all of ``tags``."""
    if tiers is not None and memory.tier not in {Tier(t) for t in tiers}:
        return False
    if kinds is not None and memory.kind not in {Kind(k) for k in kinds}:
        return False
    if tags is not None and not set(tags) <= set(memory.tags):
        return False
    return True
