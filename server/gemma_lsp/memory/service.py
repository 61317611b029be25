"""The memory service: one workspace's store, search index and indexer, off the event loop.

Every store, index and indexer call runs on one dedicated thread (``gemma-memory``), so
neither the asyncio loop nor the model's worker ever waits for SQLite, Redis or the crawl.
The search index is derived: loaded from the store at start, then brought up to date from the
store's change feed before every search (so writes from other processes sharing one Redis
show up too).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .context import build_context, build_recent, estimate_tokens, retrieve_chunks, source_path
from .indexer import IndexProgress, WorkspaceIndexer
from .model import Kind, Memory, Source, Tier, namespace_for_workspace
from .secrets import redact_secrets, refuse_secret
from .search import Embedder, Hit, RankingSettings, SearchIndex
from .settings import IndexSettings, MemorySettings
from .store import MemoryStore

log = logging.getLogger(__name__)


class MemoryService:
    def __init__(
        self,
        settings: MemorySettings,
        index_settings: IndexSettings | None = None,
        root: Path | str | None = None,
        *,
        ranking: RankingSettings | None = None,
        embedder: Embedder | None = None,
        on_degraded: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
        store: MemoryStore | None = None,
    ) -> None:
        from . import open_store

        self.root = Path(root).resolve() if root is not None else None
        self.namespace = namespace_for_workspace(self.root or Path.cwd())
        self.settings = settings
        self.store = store or open_store(settings, on_degraded=on_degraded, on_recovered=on_recovered)
        self.index = SearchIndex(ranking or settings.ranking, embedder=embedder)
        self.indexer = (
            WorkspaceIndexer(self.root, self.store, self.namespace, index_settings or IndexSettings())
            if self.root is not None
            else None
        )
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gemma-memory")
        self._loaded = False
        self._epoch: str | None = None  # the store's epoch the index was built against
        self.rebuilds = 0  # index rebuilds because the store came back with another history

    @property
    def degraded(self) -> bool:
        return bool(getattr(self.store, "degraded", False))

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ------------------------------------------------------------------ lifecycle
    def _ensure_loaded(self) -> None:
        """Build the index from the store once, then follow the change feed; rebuild it when the
        store's epoch changed (it lost its data: a Redis restarted without persistence), since the
        feed then no longer says what left."""
        epoch = getattr(self.store, "epoch", lambda ns: None)(self.namespace)
        if self._loaded and epoch is not None and epoch != self._epoch:  # (None before: built while degraded)
            log.warning("the memory store lost its data (epoch %s, was %s): rebuilding the search index", epoch, self._epoch)
            self._loaded = False
            self.rebuilds += 1
        if not self._loaded:
            self.index.load(self.store, self.namespace)
            self._loaded = True
        else:
            self.index.sync(self.store, self.namespace)
        if epoch is not None:
            self._epoch = epoch

    async def start(self) -> int:
        """Build the index from the store; returns how many memories it holds."""
        await self._run(self._ensure_loaded)
        return len(self.index)

    async def close(self) -> None:
        if self.indexer is not None:
            self.indexer.stop()
        await self._run(self.store.close)
        self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------ memories
    async def remember(
        self,
        text: str,
        *,
        tier: Tier | str = Tier.long_term,
        kind: Kind | str = Kind.note,
        tags: Iterable[str] = (),
        importance: float = 0.5,
        source: Source | dict | None = None,
        redact: bool = False,
    ) -> Memory:
        """Store a memory. Text that holds a secret (a private key, a token) is refused with
        ``SecretText`` (a ValueError naming the kind of secret), or, with ``redact``, stored with
        each secret replaced by ``[secret removed: <kind>]`` (chat turns)."""
        if redact:
            text = redact_secrets(text)
        else:
            refuse_secret(text)
        memory = Memory(
            namespace=self.namespace, tier=tier, kind=kind, text=text, tags=tuple(tags),
            importance=importance, source=source,
        )

        def put() -> Memory:
            self.store.put(memory)
            self._ensure_loaded()
            self.index.add(memory)  # at once, even while the store only journals it (an upsert)
            return memory

        return await self._run(put)

    async def search(self, query: str, k: int = 5, **filters: Any) -> list[Hit]:
        def run() -> list[Hit]:
            self._ensure_loaded()
            hits = self.index.search(query, k=k, namespace=self.namespace, **filters)
            if self.degraded:
                return hits  # the store cannot say what expired meanwhile: keep what the index has
            hits = self.index.drop_missing(self.store, hits)
            if hits:
                self.store.touch(self.namespace, [h.id for h in hits])
            return hits

        return await self._run(run)

    async def forget(self, ids: Iterable[str]) -> int:
        ids = list(ids)

        def run() -> int:
            present = [m.id for m in self.store.get_many(self.namespace, ids)]
            self.store.delete(self.namespace, present)
            self._ensure_loaded()
            return len(present)

        return await self._run(run)

    async def list(self, **filters: Any) -> list[Memory]:
        return await self._run(lambda: self.store.query(self.namespace, **filters))

    async def stats(self) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            self._ensure_loaded()
            memories = self.store.query(self.namespace)
            return {
                "namespace": self.namespace,
                "store": type(self.store).__name__,
                "degraded": self.degraded,
                "memories": len(memories),
                "by_tier": dict(Counter(m.tier.value for m in memories)),
                "by_kind": dict(Counter(m.kind.value for m in memories)),
                "indexed": len(self.index),
                "secrets_skipped": len(self.indexer.secrets) if self.indexer is not None else 0,
            }

        return await self._run(run)

    # ------------------------------------------------------------------ prompts
    async def context_for(
        self,
        query: str,
        budget_tokens: int,
        recent_budget_tokens: int | None = None,
        count_tokens=estimate_tokens,
        exclude: tuple[str, int, int] | None = None,
        exclude_tags: tuple[str, ...] = (),
    ) -> dict[str, str]:
        """``rag_context`` (retrieved, within ``budget_tokens``) and ``rag_recent`` (recent episodic
        memories, within ``recent_budget_tokens``: a quarter of ``budget_tokens`` by default) for
        prompt templates; a ``gemma_lsp.prompts.ContextProvider``.

        ``exclude`` is ``(uri, first_line, last_line)`` (0-based, inclusive) of the code the prompt
        already shows: memories of that document overlapping those lines are left out, and the
        search is run again without them, so they do not crowd out the rest. Memories with any
        of ``exclude_tags`` are left out too (a chat session's own turns, which its prompt holds).
        """
        recent_budget = max(1, budget_tokens // 4) if recent_budget_tokens is None else recent_budget_tokens

        def run() -> dict[str, str]:
            self._ensure_loaded()
            hits = self.index.search(query, k=20, namespace=self.namespace)
            if exclude is not None:
                shown = [h.id for h in hits if _overlaps(h.memory, exclude)]
                if shown:
                    hits = self.index.search(query, k=20, namespace=self.namespace, exclude_ids=shown)
                    hits = [h for h in hits if not _overlaps(h.memory, exclude)]
            recent = self.store.query(self.namespace, tiers=[Tier.episodic], limit=20)
            if exclude_tags:
                hits = [h for h in hits if not set(exclude_tags) & set(h.memory.tags)]
                recent = [m for m in recent if not set(exclude_tags) & set(m.tags)]
            root = str(self.root) if self.root else None
            return {
                "rag_context": build_context(hits, budget_tokens, count_tokens, root=root),
                "rag_recent": build_recent(recent, recent_budget, count_tokens, root=root),
            }

        return await self._run(run)

    async def retrieve(self, query: str, budget_tokens: int, exclude_path: str | None = None) -> list[tuple[str, str]]:
        """(path, text) chunks for inline completion's extra context, best first, within the budget."""

        def run() -> list[tuple[str, str]]:
            self._ensure_loaded()
            return retrieve_chunks(
                self.index, query, budget_tokens, namespace=self.namespace,
                root=str(self.root) if self.root else None,
                exclude_paths=[exclude_path] if exclude_path else (),
            )

        return await self._run(run)

    # ------------------------------------------------------------------ workspace index
    async def index_workspace(self, progress: Callable[[IndexProgress], None] | None = None) -> IndexProgress:
        if self.indexer is None:
            return IndexProgress()

        def run() -> IndexProgress:
            state = self.indexer.index_all(progress)
            self._ensure_loaded()
            return state

        return await self._run(run)

    async def file_changed(self, path: Path) -> None:
        """didSave/didChange: schedule the file; it is re-indexed once quiet."""
        if self.indexer is not None:
            self.indexer.schedule(path)
            await asyncio.sleep((self.indexer.settings.debounce_seconds or 0) + 0.05)
            await self._run(self.indexer.flush)

    # ------------------------------------------------------------------ export / import
    async def export_jsonl(self, path: Path) -> int:
        def run() -> int:
            memories = self.store.query(self.namespace)
            tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                for m in memories:
                    f.write(m.model_dump_json() + "\n")
            tmp.replace(path)
            return len(memories)

        return await self._run(run)

    async def import_jsonl(self, path: Path) -> int:
        """Import memories exported from any workspace into this one; returns how many were read."""

        def run() -> int:
            batch = []
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
                    if not isinstance(data, dict):
                        raise ValueError(f"{path}:{number}: expected a JSON object per line")
                    data["namespace"] = self.namespace
                    data.pop("id", None)
                    data.pop("content_hash", None)
                    try:
                        memory = Memory.model_validate(data)
                    except ValidationError as exc:
                        first = exc.errors()[0]
                        where = ".".join(str(p) for p in first["loc"]) or "memory"
                        raise ValueError(f"{path}:{number}: {where}: {first['msg']}") from None
                    refuse_secret(memory.text, f"{path}:{number}: the memory's text")
                    batch.append(memory)
            self.store.put_many(batch)
            self._ensure_loaded()
            return len(batch)

        return await self._run(run)



def _overlaps(memory: Memory, span: tuple[str, int, int]) -> bool:
    """Whether ``memory`` comes from the document ``span[0]`` and covers any of its lines ``span[1:]``."""
    if memory.source is None:
        return False
    uri, first, last = span
    if source_path(memory.source.uri) != source_path(uri):
        return False
    rng = memory.source.range
    if rng is None:
        return True  # the whole document
    return rng.start.line <= last and first <= rng.last_line
