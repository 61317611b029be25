"""Memory settings: where memories live, how long each tier keeps them, what the indexer reads.

The memory layer (``gemma_lsp.memory``) uses these; they live here so ``Settings`` can hold them
without config/ importing any other layer."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .strict import Bool, Float, Int



_CENTURY = 100 * 365 * 86400.0  # the longest TTL or half-life a setting takes, in seconds


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gemma-lsp"


def _default_sqlite_path() -> Path:
    return default_cache_dir() / "memories.sqlite3"


def _default_journal_dir() -> Path:
    return default_cache_dir() / "memory-journal"


class TierTTLs(BaseModel):
    """Seconds a memory of each tier lives after its last put; ``None`` = never expires."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    working: Float | None = Field(default=8 * 3600.0, gt=0, le=_CENTURY, description="This session's scratch memories.")
    short_term: Float | None = Field(default=7 * 86400.0, gt=0, le=_CENTURY, description="Notes meant for days, not forever.")
    long_term: Float | None = Field(default=None, gt=0, le=_CENTURY, description="Notes kept until forgotten.")
    episodic: Float | None = Field(default=30 * 86400.0, gt=0, le=_CENTURY, description="Chat turns, accepted completions.")
    semantic: Float | None = Field(default=None, gt=0, le=_CENTURY, description="The workspace's code and docs index.")

    def for_tier(self, tier) -> float | None:
        """The TTL of ``tier`` (a Tier or its name)."""
        return getattr(self, str(getattr(tier, "value", tier)))


class TierWeights(BaseModel):
    """A multiplier on the final score per tier (1.0 = neutral)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    working: Float = Field(default=1.0, ge=0, le=10, description="This session's scratch memories.")
    short_term: Float = Field(default=0.95, ge=0, le=10, description="Notes meant for days.")
    long_term: Float = Field(default=1.0, ge=0, le=10, description="Notes kept until forgotten.")
    episodic: Float = Field(default=0.85, ge=0, le=10, description="Chat turns and accepted completions: a bit below code.")
    semantic: Float = Field(default=1.0, ge=0, le=10, description="The workspace's code and docs index.")

    def for_tier(self, tier) -> float:
        return getattr(self, str(getattr(tier, "value", tier)))


class TierHalfLives(BaseModel):
    """Recency half-life in seconds per tier; ``None`` = that tier does not decay (recency 1.0)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    working: Float | None = Field(default=2 * 3600.0, gt=0, le=_CENTURY, description="This session's scratch memories.")
    short_term: Float | None = Field(default=2 * 86400.0, gt=0, le=_CENTURY, description="Notes meant for days.")
    long_term: Float | None = Field(default=90 * 86400.0, gt=0, le=_CENTURY, description="Notes kept until forgotten.")
    episodic: Float | None = Field(default=7 * 86400.0, gt=0, le=_CENTURY, description="Chat turns and accepted completions.")
    semantic: Float | None = Field(default=None, gt=0, le=_CENTURY, description="Code index: how long ago a file was indexed says little.")

    def for_tier(self, tier) -> float | None:
        return getattr(self, str(getattr(tier, "value", tier)))


class RankingSettings(BaseModel):
    """How hits are scored. See the module docstring for the formula.

    With ``rrf_k = 60`` and a pool of 50 candidates, relevance in a single retriever is 1.0 at rank 1,
    0.96 at rank 2, 0.93 at rank 3, 0.72 at rank 10. The small default weights of recency and
    importance (0.05 each) therefore reorder near-ties only: both at their best against both at
    their worst lift a hit about two ranks, never from the bottom to the top.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    w_relevance: Float = Field(default=1.0, ge=0, le=1, description="Weight of the fused (RRF) relevance, 0..1.")
    w_recency: Float = Field(default=0.05, ge=0, le=1, description="Weight of the recency decay, 0..1.")
    w_importance: Float = Field(default=0.05, ge=0, le=1, description="Weight of Memory.importance, 0..1.")
    tier_weights: TierWeights = Field(
        default_factory=TierWeights, description="A multiplier on the final score per tier (1.0 = neutral)."
    )
    half_life: TierHalfLives = Field(
        default_factory=TierHalfLives,
        description="Recency half-life in seconds per tier; none = that tier does not decay.",
    )
    rrf_k: Float = Field(default=60.0, gt=0, le=10_000, description="Reciprocal rank fusion constant.")
    bm25_k1: Float = Field(default=1.2, ge=0, le=10, description="BM25 term-frequency saturation (higher: repeats count longer).")
    bm25_b: Float = Field(default=0.75, ge=0, le=1, description="BM25 length normalisation (0 = none, 1 = full).")
    candidates: Int = Field(default=50, ge=1, le=10_000, description="Each retriever's top-N before fusion (at least 4 * k).")
    lexical_min_ratio: Float = Field(
        default=0.1, ge=0, le=1, description="Lexical candidates score at least this fraction of the best BM25."
    )
    dense_min_cosine: Float = Field(default=0.0, ge=-1, le=1, description="Dense candidates have a higher cosine.")
    max_query_terms: Int = Field(
        default=64, ge=1, le=10_000, description="Long queries (code around the cursor) keep their rarest terms only."
    )
    common_term_ratio: Float = Field(
        default=0.5, gt=0, le=1,
        description="In queries of more than 8 distinct terms, skip terms found in more than this share of "
        "the documents (their idf is small and their postings long) and in at least 1,000 of them; 1.0 = never skip.",
    )  # fmt: skip


class MemorySettings(BaseModel):
    """Memory storage settings. ``url`` None = the embedded SQLite store; otherwise Redis.

    Redis URLs: ``redis://[:password@]host:port/db``, ``rediss://`` for TLS, and a Redis Cluster
    through ``redis+cluster://`` / ``rediss+cluster://`` or a ``?cluster=true`` query flag.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    url: str | None = Field(default=None, description="Redis URL; none = embedded SQLite store.")
    prefix: str = Field(default="gemma-lsp", min_length=1, max_length=64, description="Redis key prefix.")
    ttl: TierTTLs = Field(
        default_factory=TierTTLs,
        description="Seconds a memory of each tier lives after its last write; none = never expires.",
    )
    sqlite_path: Path = Field(
        default_factory=_default_sqlite_path,
        description="The embedded store's SQLite file (used when url is none); default: in the user data folder.",
    )
    journal_dir: Path = Field(
        default_factory=_default_journal_dir,
        description="Where writes are journaled while Redis is unreachable (one JSON Lines file per URL+prefix).",
    )
    embedding_model: Path | None = Field(
        default=None,
        description="A GGUF embedding model (e.g. EmbeddingGemma) for dense retrieval beside BM25; none = lexical only.",
    )
    ranking: RankingSettings = Field(
        default_factory=RankingSettings, description="How search results are scored: relevance, recency, importance."
    )
    change_feed_max_len: Int = Field(default=10_000, ge=100, le=10_000_000, description="Approximate entries kept per namespace.")
    connect_timeout: Float = Field(default=1.0, gt=0, le=300, description="Seconds to wait for a Redis connection.")
    socket_timeout: Float = Field(default=2.0, gt=0, le=300, description="Seconds to wait for a Redis reply.")
    retry_interval: Float = Field(
        default=2.0, ge=0, le=3600, description="While degraded, try Redis again at most this often (seconds)."
    )

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if any(ch in value for ch in "{}: \t\r\n"):
            raise ValueError("prefix must not contain braces, colons or whitespace")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}:
            raise ValueError("url must be a redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// URL")
        return value


class IndexSettings(BaseModel):
    """What the workspace indexer reads and how it cuts it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: Bool = Field(default=True, description="Index the workspace folders into semantic memories.")
    max_file_bytes: Int = Field(default=512 * 1024, ge=1, le=1 << 30, description="Larger files are skipped.")
    chunk_lines: Int = Field(default=40, ge=4, le=1000, description="Lines per indexed chunk of a file.")
    overlap_lines: Int = Field(default=8, ge=0, le=500, description="Lines a chunk shares with the one before it.")
    deny: tuple[str, ...] = Field(default=(), description="More gitignore-style patterns to skip.")
    secret_patterns_extra: tuple[str, ...] = Field(
        default=(),
        description="More secret file patterns, added to the built-in list (never opened, never stored): "
        "a name such as *.vault, a folder ending in / such as private/, or a path tail such as conf/prod.yaml.",
    )
    allow_secret_files: tuple[str, ...] = Field(
        default=(),
        description="Opt-out: files matching these patterns are indexed even when their name or content looks "
        "like a secret (e.g. .env.example); every index run logs it.",
    )
    debounce_seconds: Float = Field(
        default=0.5, ge=0, le=3600, description="How long a changed file must stay quiet before it is indexed again."
    )
