"""Search over memories: lexical (BM25 on code-aware tokens) and dense (cosine) retrieval, fused by
reciprocal rank fusion, then ranked by relevance, recency, importance and tier.

The index is *derived* from a store, never a second source of truth: ``SearchIndex.load(store, ns)``
rebuilds it from the store at start-up and ``SearchIndex.sync(store, ns)`` follows the store's
change feed; ``add`` / ``remove`` / ``rebuild`` / ``apply`` are the primitives underneath.

Layout (built for ~100k chunks): every indexed memory has a *slot*; per-slot facts (alive,
namespace, tier, kind, importance, last access, length, has-vector) live in numpy arrays. Lexical
postings are a CSR segment (numpy ``offsets`` / ``slots`` / ``tf`` arrays, term-major) plus a small
Python delta segment for incremental adds; the delta is merged into the CSR segment (and dead
slots compacted away) once it grows past a threshold. A query touches only its terms' postings.
Dense vectors are rows of one growing float32 matrix, normalised, so cosine is one mat-vec.

Ranking (``RankingSettings``; every factor is visible on each ``Hit``)::

    RRF       = sum over retrievers of 1 / (rrf_k + rank)      (rank = pool + 1 when not retrieved)
    relevance = (RRF - RRF_none) / (RRF_max - RRF_none)        1 = rank 1 in every active retriever,
                                                               0 = retrieved by none
    (a retriever's candidates, ``pool = max(candidates, 4 * k)`` at most, are the hits scoring more
    than ``lexical_min_ratio`` of its best BM25, or a cosine above ``dense_min_cosine``: so fusion
    sees no junk tail)
    recency   = 0.5 ** (age / half_life(tier))       age = now - last_accessed; 1.0 if no half-life
    score     = tier_weight(tier) * (w_relevance * relevance + w_recency * recency
                                     + w_importance * importance)

This module imports numpy, pydantic and the standard library only (never engine/ or lsp/): an
embedding model comes in through the ``Embedder`` protocol, which the engine can satisfy.
"""

from __future__ import annotations

import logging
import math
from array import array
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gemma_lsp.config.memory import RankingSettings, TierHalfLives, TierWeights

from .model import Change, Kind, Memory, Tier

log = logging.getLogger(__name__)
COMMON_TERM_MIN_POSTINGS = 1000  # see SearchIndex._lexical

__all__ = [
    "Embedder", "Hit", "RankingSettings", "SearchIndex", "TierWeights", "TierHalfLives",
    "split_identifier", "term_counts", "tokenize",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
MAX_WORD_CHARS = 64  # longer "words" (hashes, base64, minified code) are skipped


@lru_cache(maxsize=1 << 17)
def split_identifier(word: str) -> tuple[str, ...]:
    """The terms of one identifier: the whole, then its parts when there are several. The whole
    is the parts joined without separators, so the same name in camelCase and snake_case is one
    term: ``parseHTTPResponse`` -> ``('parsehttpresponse', 'parse', 'http', 'response')``;
    ``parse_http_response`` -> the same; ``x`` -> ``('x',)``. camelCase is split for ASCII
    identifiers; any identifier splits on ``_``."""
    whole = word.strip("_").lower()
    if not whole or len(whole) > MAX_WORD_CHARS:
        return ()
    if word.isascii():
        parts = [p.lower() for p in _CAMEL_RE.findall(word)]
    else:
        parts = [p.lower() for p in word.split("_") if p]
    if len(parts) <= 1:
        return (whole,)
    return ("".join(parts), *parts)


def tokenize(text: str) -> list[str]:
    """Code-aware terms of ``text``, in order, with repeats: identifiers whole and split, numbers
    kept, punctuation dropped, everything lower-cased."""
    out: list[str] = []
    for word in _WORD_RE.findall(text):
        out.extend(split_identifier(word))
    return out


def term_counts(text: str) -> dict[str, int]:
    """``Counter(tokenize(text))``, faster: each distinct word is split once."""
    return Counter(chain.from_iterable(map(split_identifier, _WORD_RE.findall(text))))


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


# The ranking settings live in config/ (so Settings can hold them); see RankingSettings there.


# --------------------------------------------------------------------------------------------
# Embedder and hits
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors, e.g. the engine's GGUF embedding model (EmbeddingGemma).

    ``embed(texts)`` returns an array-like of shape ``(len(texts), dim)``; any scale (the index
    normalises). Called from the thread that calls the index (a worker thread, never the loop).
    """

    def embed(self, texts: list[str]) -> Any: ...


@dataclass(frozen=True)
class Hit:
    """One search result with every factor of its score."""

    memory: Memory
    score: float
    relevance: float  # RRF / RRF_max, 0..1
    recency: float  # 0..1
    importance: float  # 0..1
    tier_weight: float
    lexical_rank: int | None = None  # 1-based, None = not found lexically
    lexical_score: float | None = None  # BM25
    dense_rank: int | None = None
    dense_score: float | None = None  # cosine

    @property
    def id(self) -> str:
        return self.memory.id


# --------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------

_TIERS = list(Tier)
_KINDS = list(Kind)
_TIER_CODE = {t: i for i, t in enumerate(_TIERS)}
_KIND_CODE = {k: i for i, k in enumerate(_KINDS)}
_EMPTY_I32 = np.zeros(0, dtype=np.int32)
_EMPTY_F32 = np.zeros(0, dtype=np.float32)


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    if size <= len(array):
        return array
    new = np.zeros((max(size, 2 * len(array), 64),) + array.shape[1:], dtype=array.dtype)
    new[: len(array)] = array
    return new


class SearchIndex:
    """An in-memory search index over memories of one or more namespaces. Thread-safe.

    ``embedder`` None = lexical only. Memories carrying an ``embedding`` of the index's dimension
    use it; the others are embedded (in batches of ``embed_batch``) when an embedder is set.
    """

    def __init__(
        self,
        settings: RankingSettings | None = None,
        embedder: Embedder | None = None,
        *,
        embed_batch: int = 64,
    ) -> None:
        self.settings = settings or RankingSettings()
        self.embedder = embedder
        self.embed_batch = embed_batch
        self._lock = threading.RLock()
        self.cursors: dict[str, str | None] = {}  # namespace -> last applied change-feed cursor
        self._reset()

    # ---- state ----------------------------------------------------------------------------

    def _reset(self) -> None:
        self._n = 0  # slots used (live or dead)
        self._dead = 0
        self._slot_of: dict[tuple[str, str], int] = {}
        self._memories: list[Memory | None] = []
        self._alive = np.zeros(0, dtype=bool)
        self._ns = np.zeros(0, dtype=np.int32)
        self._tier = np.zeros(0, dtype=np.int8)
        self._kind = np.zeros(0, dtype=np.int8)
        self._importance = np.zeros(0, dtype=np.float32)
        self._last = np.zeros(0, dtype=np.float64)
        self._len = np.zeros(0, dtype=np.float32)
        self._has_vec = np.zeros(0, dtype=bool)
        self._vecs: np.ndarray | None = None
        self._dim: int | None = None
        self._ns_code: dict[str, int] = {}
        self._ns_docs: Counter[int] = Counter()
        self._ns_len: Counter[int] = Counter()
        self._tag_slots: dict[str, set[int]] = {}
        self._terms: dict[str, int] = {}
        self._offsets = np.zeros(1, dtype=np.int64)  # CSR over term ids < len(offsets) - 1
        self._post_slots = _EMPTY_I32
        self._post_tf = _EMPTY_F32
        self._delta: dict[int, tuple[list[int], list[int]]] = {}
        self._delta_postings = 0
        self._bulk_terms, self._bulk_slots, self._bulk_tf = array("i"), array("i"), array("f")

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple):
            return key in self._slot_of
        return any(k[1] == key for k in self._slot_of)

    def get(self, namespace: str, id: str) -> Memory | None:
        slot = self._slot_of.get((namespace, id))
        return None if slot is None else self._memories[slot]

    def stats(self) -> dict[str, int]:
        return {
            "memories": len(self._slot_of), "slots": self._n, "dead_slots": self._dead, "terms": len(self._terms),
            "postings": int(len(self._post_slots)), "delta_postings": self._delta_postings,
            "vectors": int(self._has_vec[: self._n].sum()), "dim": self._dim or 0,
        }  # fmt: skip

    # ---- writes ---------------------------------------------------------------------------

    def add(self, memory: Memory) -> None:
        """Index one memory (replacing the one with its namespace and id)."""
        self.add_many([memory])

    def add_many(self, memories: Iterable[Memory]) -> None:
        memories = list(memories)
        vectors = self._vectors_for(memories)
        with self._lock:
            for memory, vector in zip(memories, vectors):
                self._remove_key((memory.namespace, memory.id))
                self._add_one(memory, vector, into_delta=True)
            self._maybe_merge()

    def remove(self, id: str, namespace: str | None = None) -> bool:
        """Drop memory ``id`` from ``namespace`` (None = from every namespace). True if it was there."""
        with self._lock:
            keys = [(namespace, id)] if namespace is not None else [k for k in self._slot_of if k[1] == id]
            removed = [self._remove_key(k) for k in keys]
            self._maybe_merge()
            return any(removed)

    def touch(self, namespace: str, ids: Iterable[str], at: float | None = None) -> None:
        """Mirror a store ``touch`` (recency uses the last access); the feed does not carry touches."""
        at = time.time() if at is None else at
        with self._lock:
            for id in ids:
                slot = self._slot_of.get((namespace, id))
                if slot is not None:
                    self._last[slot] = max(self._last[slot], at)

    def rebuild(self, memories: Iterable[Memory], namespace: str | None = None) -> None:
        """Replace the index's content (of ``namespace`` only, when given) with ``memories``."""
        memories = list(memories)
        vectors = self._vectors_for(memories)
        with self._lock:
            if namespace is None:
                keep: list[tuple[Memory, np.ndarray | None]] = []
                self._reset()
            else:
                keep = [
                    (m, self._vecs[s] if self._has_vec[s] and self._vecs is not None else None)
                    for (ns, _), s in self._slot_of.items()
                    if ns != namespace and (m := self._memories[s]) is not None
                ]
                dim = self._dim
                self._reset()
                self._dim = dim
            for memory, vector in [*keep, *zip(memories, vectors)]:
                self._remove_key((memory.namespace, memory.id))
                self._add_one(memory, vector, into_delta=False)
            self._merge()

    def apply(self, change: Change, get: Callable[[str, str], Memory | None]) -> None:
        """Apply one change-feed entry. ``get(namespace, id)`` fetches a put memory (e.g. ``store.get``);
        a put whose memory is gone (expired or deleted since) removes it."""
        self.apply_many([change], lambda ns, ids: [m for m in (get(ns, i) for i in ids) if m is not None])

    def apply_many(self, changes: Sequence[Change], get_many: Callable[[str, Sequence[str]], list[Memory]]) -> None:
        """Apply change-feed entries in order; only each id's last entry matters (puts are upserts)."""
        last: dict[tuple[str, str], str] = {}
        for change in changes:
            last.pop((change.namespace, change.id), None)
            last[(change.namespace, change.id)] = change.op
        by_ns: dict[str, list[str]] = {}
        for (ns, id), op in last.items():
            if op == "put":
                by_ns.setdefault(ns, []).append(id)
        found: dict[tuple[str, str], Memory] = {}
        for ns, ids in by_ns.items():
            for memory in get_many(ns, ids):
                found[(memory.namespace, memory.id)] = memory
        with self._lock:
            for key in last:
                if key not in found:
                    self._remove_key(key)
            self._maybe_merge()
        if found:
            self.add_many(found.values())
        with self._lock:
            for change in changes:
                self.cursors[change.namespace] = change.cursor

    # ---- following a store ----------------------------------------------------------------

    def load(self, store: Any, namespace: str, *, page: int = 1000) -> int:
        """Rebuild ``namespace`` from ``store`` (start-up): remember the feed's end first, then read
        every live memory, so a change made meanwhile is applied again by the next ``sync``
        (harmless: puts are upserts). Returns how many memories were indexed."""
        cursor = None
        while True:
            batch = store.changes(namespace, since=cursor, limit=page)
            if not batch:
                break
            cursor = batch[-1].cursor
            if len(batch) < page:
                break
        memories = store.query(namespace)
        self.rebuild(memories, namespace=namespace)
        with self._lock:
            self.cursors[namespace] = cursor
        return len(memories)

    def sync(self, store: Any, namespace: str, *, page: int = 1000) -> int:
        """Apply the store's changes since the last ``load`` / ``sync``; returns how many entries."""
        total = 0
        while True:
            batch = store.changes(namespace, since=self.cursors.get(namespace), limit=page)
            if not batch:
                return total
            self.apply_many(batch, store.get_many)
            total += len(batch)
            if len(batch) < page:
                return total

    def drop_missing(self, store: Any, hits: list[Hit]) -> list[Hit]:
        """The hits the store still has (expiry is not in the feed); the others leave the index."""
        by_ns: dict[str, list[str]] = {}
        for hit in hits:
            by_ns.setdefault(hit.memory.namespace, []).append(hit.memory.id)
        live = {(m.namespace, m.id) for ns, ids in by_ns.items() for m in store.get_many(ns, ids)}
        with self._lock:
            for hit in hits:
                if (hit.memory.namespace, hit.memory.id) not in live:
                    self._remove_key((hit.memory.namespace, hit.memory.id))
        return [h for h in hits if (h.memory.namespace, h.memory.id) in live]

    # ---- internals: writes ----------------------------------------------------------------

    def _vectors_for(self, memories: list[Memory]) -> list[np.ndarray | None]:
        """Normalised vectors: a memory's stored embedding when it has the index's dimension, else the
        embedder's (batched); None when there is neither. With an embedder, the index's dimension is
        the embedder's (learnt from its first answer); without one, the first stored embedding's."""
        out: list[np.ndarray | None] = [None] * len(memories)
        missing: list[int] = []
        if self.embedder is not None and self._dim is None and memories:
            self._embed_into(memories, [0], out)  # learn the dimension
            if out[0] is not None:
                self._dim = len(out[0])
        for i, m in enumerate(memories):
            if out[i] is not None:
                continue
            if m.embedding is not None and (len(m.embedding) == self._dim or (self._dim is None and self.embedder is None)):
                out[i] = _normalise(np.asarray(m.embedding, dtype=np.float32))
            elif self.embedder is not None and self._dim is not None:
                missing.append(i)
        for start in range(0, len(missing), self.embed_batch):
            self._embed_into(memories, missing[start : start + self.embed_batch], out)
        return out

    def _embed_into(self, memories: list[Memory], idx: list[int], out: list[np.ndarray | None]) -> None:
        try:
            mat = np.asarray(self.embedder.embed([memories[i].text for i in idx]), dtype=np.float32)  # type: ignore[union-attr]
            if mat.ndim != 2 or mat.shape[0] != len(idx):
                raise ValueError(f"the embedder returned shape {mat.shape} for {len(idx)} texts")
        except Exception:  # an embedder failure costs the dense half, never the index
            log.exception("embedding %d memories failed; they are indexed lexically only", len(idx))
            return
        for row, i in zip(mat, idx):
            out[i] = _normalise(row)

    def _add_one(self, memory: Memory, vector: np.ndarray | None, *, into_delta: bool) -> None:
        slot = self._n
        self._n += 1
        if slot >= len(self._alive):
            size = slot + 1
            self._alive, self._ns, self._tier, self._kind = (
                _grow(self._alive, size), _grow(self._ns, size), _grow(self._tier, size), _grow(self._kind, size))  # fmt: skip
            self._importance, self._last, self._len, self._has_vec = (
                _grow(self._importance, size), _grow(self._last, size), _grow(self._len, size), _grow(self._has_vec, size))  # fmt: skip
            if self._vecs is not None:
                self._vecs = _grow(self._vecs, len(self._alive))
        ns = self._ns_code.setdefault(memory.namespace, len(self._ns_code))
        counts = term_counts(memory.text)
        length = sum(counts.values())
        self._memories.append(memory)
        self._slot_of[(memory.namespace, memory.id)] = slot
        self._alive[slot] = True
        self._ns[slot] = ns
        self._tier[slot] = _TIER_CODE[memory.tier]
        self._kind[slot] = _KIND_CODE[memory.kind]
        self._importance[slot] = memory.importance
        self._last[slot] = max(memory.last_accessed or memory.created_at, memory.created_at)
        self._len[slot] = length
        self._ns_docs[ns] += 1
        self._ns_len[ns] += length
        for tag in memory.tags:
            self._tag_slots.setdefault(tag, set()).add(slot)
        terms = self._terms
        tids = [terms.setdefault(term, len(terms)) for term in counts]
        if into_delta:
            delta = self._delta
            for tid, tf in zip(tids, counts.values()):
                entry = delta.get(tid)
                if entry is None:
                    entry = delta[tid] = ([], [])
                entry[0].append(slot)
                entry[1].append(tf)
            self._delta_postings += len(counts)
        else:  # bulk (rebuild): flat buffers, folded in by the _merge that follows
            self._bulk_terms.extend(tids)
            self._bulk_slots.extend(repeat(slot, len(tids)))
            self._bulk_tf.extend(counts.values())
        if vector is not None:
            if self._dim is None:
                self._dim = len(vector)
            if len(vector) == self._dim:
                if self._vecs is None:
                    self._vecs = np.zeros((len(self._alive), self._dim), dtype=np.float32)
                self._vecs[slot] = vector
                self._has_vec[slot] = True

    def _remove_key(self, key: tuple[str, str]) -> bool:
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return False
        memory = self._memories[slot]
        self._memories[slot] = None
        self._alive[slot] = False
        self._has_vec[slot] = False
        ns = int(self._ns[slot])
        self._ns_docs[ns] -= 1
        self._ns_len[ns] -= float(self._len[slot])
        if memory is not None:
            for tag in memory.tags:
                slots = self._tag_slots.get(tag)
                if slots is not None:
                    slots.discard(slot)
                    if not slots:
                        del self._tag_slots[tag]
        self._dead += 1
        return True

    def _maybe_merge(self) -> None:
        main = len(self._post_slots)
        if self._delta_postings > max(20_000, main // 8) or (self._dead > 1000 and self._dead * 4 > self._n):
            self._merge()

    def _merge(self) -> None:
        """Fold the delta postings into the CSR segment and compact dead slots away."""
        n_terms = len(self._terms)
        main_terms = np.repeat(np.arange(len(self._offsets) - 1, dtype=np.int32), np.diff(self._offsets))
        d_terms, d_slots, d_tf = [], [], []
        for tid, (slots, tfs) in self._delta.items():
            d_terms.append(np.full(len(slots), tid, dtype=np.int32))
            d_slots.append(np.asarray(slots, dtype=np.int32))
            d_tf.append(np.asarray(tfs, dtype=np.float32))
        if len(self._bulk_terms):
            d_terms.append(np.frombuffer(self._bulk_terms, dtype=np.int32).copy())
            d_slots.append(np.frombuffer(self._bulk_slots, dtype=np.int32).copy())
            d_tf.append(np.frombuffer(self._bulk_tf, dtype=np.float32).copy())
            self._bulk_terms, self._bulk_slots, self._bulk_tf = array("i"), array("i"), array("f")
        terms = np.concatenate([main_terms, *d_terms]) if d_terms else main_terms
        slots = np.concatenate([self._post_slots, *d_slots]) if d_slots else self._post_slots
        tfs = np.concatenate([self._post_tf, *d_tf]) if d_tf else self._post_tf
        n = self._n
        alive = self._alive[:n]
        keep = alive[slots] if len(slots) else np.zeros(0, dtype=bool)
        terms, slots, tfs = terms[keep], slots[keep], tfs[keep]
        if self._dead:  # compact: renumber live slots 0..live-1, in order
            new_of_old = np.cumsum(alive, dtype=np.int64) - 1
            live = np.flatnonzero(alive)
            slots = new_of_old[slots].astype(np.int32)
            for name in ("_alive", "_ns", "_tier", "_kind", "_importance", "_last", "_len", "_has_vec"):
                setattr(self, name, getattr(self, name)[live].copy())
            if self._vecs is not None:
                self._vecs = self._vecs[live].copy()
            self._memories = [self._memories[i] for i in live]
            remap = new_of_old.tolist()
            self._slot_of = {k: remap[s] for k, s in self._slot_of.items()}
            self._tag_slots = {t: {remap[s] for s in ss} for t, ss in self._tag_slots.items()}
            self._n = len(live)
            self._dead = 0
        order = np.argsort(terms, kind="stable")
        self._post_slots = np.ascontiguousarray(slots[order])
        self._post_tf = np.ascontiguousarray(tfs[order])
        counts = np.bincount(terms, minlength=n_terms)
        self._offsets = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(counts, out=self._offsets[1:])
        self._delta = {}
        self._delta_postings = 0

    # ---- search ---------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        namespace: str | None = None,
        *,
        tiers: Iterable[Tier | str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        tags: Iterable[str] | None = None,
        now: float | None = None,
        query_vector: Sequence[float] | np.ndarray | None = None,
        exclude_ids: Iterable[str] = (),
    ) -> list[Hit]:
        """The ``k`` best memories for ``query``: of ``namespace`` (None = all), any of ``tiers``, any of
        ``kinds``, all of ``tags``. ``query_vector`` skips embedding the query. Best first."""
        if k <= 0:
            return []
        now = time.time() if now is None else now
        s = self.settings
        pool = max(s.candidates, 4 * k)
        qvec = None
        if query_vector is not None:
            qvec = _normalise(np.asarray(query_vector, dtype=np.float32))
        elif self.embedder is not None and self._dim is not None and query.strip():
            try:
                qvec = _normalise(np.asarray(self.embedder.embed([query]), dtype=np.float32).reshape(-1))
            except Exception:
                log.exception("embedding the query failed; lexical search only")
        with self._lock:
            if self._n == 0:
                return []
            ns_code = None
            if namespace is not None:
                ns_code = self._ns_code.get(namespace)
                if ns_code is None:
                    return []
            base = self._alive[: self._n].copy()
            if ns_code is not None:
                base &= self._ns[: self._n] == ns_code
            mask = self._filter_mask(base, tiers, kinds, tags, exclude_ids, namespace)
            lexical = self._lexical(query, ns_code, mask, pool)
            dense = self._dense(qvec, mask, pool) if qvec is not None and qvec.shape[0] == self._dim else []
            return self._rank(lexical, dense, k, now, pool)

    def _filter_mask(self, base, tiers, kinds, tags, exclude_ids, namespace) -> np.ndarray:
        n = self._n
        mask = base
        if tiers is not None:
            mask &= np.isin(self._tier[:n], [_TIER_CODE[Tier(t)] for t in tiers])
        if kinds is not None:
            mask &= np.isin(self._kind[:n], [_KIND_CODE[Kind(x)] for x in kinds])
        if tags is not None:
            for tag in set(tags):
                slots = self._tag_slots.get(tag)
                tag_mask = np.zeros(n, dtype=bool)
                if slots:
                    tag_mask[np.fromiter(slots, dtype=np.int64, count=len(slots))] = True
                mask &= tag_mask
        excluded = set(exclude_ids)
        if excluded:
            if namespace is None:
                slots = [slot for (_, id), slot in self._slot_of.items() if id in excluded]
            else:
                slots = [slot for id in excluded if (slot := self._slot_of.get((namespace, id))) is not None]
            mask[slots] = False
        return mask

    def _segments(self, tid: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """A term's postings: the CSR slice (a view) and the delta's, as (slots, tf) arrays."""
        out = []
        if tid < len(self._offsets) - 1:
            a, b = self._offsets[tid], self._offsets[tid + 1]
            if b > a:
                out.append((self._post_slots[a:b], self._post_tf[a:b]))
        delta = self._delta.get(tid)
        if delta is not None:
            out.append((np.asarray(delta[0], dtype=np.int32), np.asarray(delta[1], dtype=np.float32)))
        return out

    def _lexical(self, query: str, ns_code: int | None, mask: np.ndarray, pool: int) -> list[tuple[int, float]]:
        """BM25 top-``pool`` slots among ``mask``. Corpus statistics (N, df, average length) are the
        namespace's (or the whole index's), independent of the tier/kind/tag filters."""
        s = self.settings
        tids = {self._terms[t] for t in set(tokenize(query)) if t in self._terms}
        if not tids:
            return []
        if len(tids) > 8:  # a long query: rarest terms first (approximate df: all postings, any namespace)
            approx = {t: self._approx_df(t) for t in tids}
            ordered = sorted(tids, key=lambda t: (approx[t], t))[: s.max_query_terms]
            if s.common_term_ratio < 1.0:
                # Skipping is for speed: a term in fewer than COMMON_TERM_MIN_POSTINGS documents is
                # cheap to score, and in a small corpus (a few files) skipping would drop the very
                # terms two memories share.
                limit = max(s.common_term_ratio * max(self._n - self._dead, 1), COMMON_TERM_MIN_POSTINGS)
                ordered = ordered[:8] + [t for t in ordered[8:] if approx[t] <= limit]
            tids = set(ordered)
        if ns_code is None:
            n_docs = float(sum(self._ns_docs.values()))
            total_len = float(sum(self._ns_len.values()))
        else:
            n_docs, total_len = float(self._ns_docs[ns_code]), float(self._ns_len[ns_code])
        if n_docs <= 0:
            return []
        n = self._n
        k1, b = s.bm25_k1, s.bm25_b
        knorm = (k1 * (1.0 - b + b * self._len[:n] / max(total_len / n_docs, 1e-9))).astype(np.float32)
        other_ns = ns_code is not None and sum(1 for c, d in self._ns_docs.items() if d > 0 and c != ns_code) > 0
        check_alive = self._dead > 0
        scores = np.zeros(n, dtype=np.float32)
        for tid in tids:
            segments = self._segments(tid)
            if check_alive or other_ns:
                kept = []
                for slots, tfs in segments:
                    valid = self._alive[slots] if check_alive else np.ones(len(slots), dtype=bool)
                    if other_ns:
                        valid &= self._ns[slots] == ns_code
                    kept.append((slots[valid], tfs[valid]))
                segments = kept
            df = sum(len(slots) for slots, _ in segments)
            if df == 0:
                continue
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            for slots, tfs in segments:
                scores[slots] += np.float32(idf * (k1 + 1.0)) * tfs / (tfs + knorm[slots])
        scores[~mask] = 0.0
        best = float(scores.max()) if n else 0.0
        if best <= 0:
            return []
        return _top(scores, pool, floor=max(best * s.lexical_min_ratio, 0.0), strict=True)

    def _approx_df(self, tid: int) -> int:
        main = int(self._offsets[tid + 1] - self._offsets[tid]) if tid < len(self._offsets) - 1 else 0
        delta = self._delta.get(tid)
        return main + (len(delta[0]) if delta else 0)

    def _dense(self, qvec: np.ndarray, mask: np.ndarray, pool: int) -> list[tuple[int, float]]:
        if self._vecs is None:
            return []
        n = self._n
        sims = self._vecs[:n] @ qvec
        sims[~(mask & self._has_vec[:n])] = -np.inf
        return _top(sims, pool, floor=self.settings.dense_min_cosine, strict=True)

    def _rank(self, lexical, dense, k: int, now: float, pool: int) -> list[Hit]:
        s = self.settings
        lex_info = {slot: (rank, score) for rank, (slot, score) in enumerate(lexical, 1)}
        dense_info = {slot: (rank, score) for rank, (slot, score) in enumerate(dense, 1)}
        active = [info for info in (lex_info, dense_info) if info]
        if not active:
            return []
        miss = 1.0 / (s.rrf_k + pool + 1.0)  # what "not retrieved" counts as
        rrf = {
            slot: sum(1.0 / (s.rrf_k + info[slot][0]) if slot in info else miss for info in active)
            for slot in {*lex_info, *dense_info}
        }
        rrf_none = len(active) * miss
        rrf_max = len(active) / (s.rrf_k + 1.0)
        half_lives = {t: s.half_life.for_tier(t) for t in _TIERS}
        tier_weights = {t: s.tier_weights.for_tier(t) for t in _TIERS}
        hits = []
        for slot, fused in rrf.items():
            memory = self._memories[slot]
            assert memory is not None
            relevance = (fused - rrf_none) / (rrf_max - rrf_none)
            half_life = half_lives[memory.tier]
            age = max(0.0, now - float(self._last[slot]))
            recency = 1.0 if half_life is None else 0.5 ** (age / half_life)
            importance = float(self._importance[slot])
            tier_weight = tier_weights[memory.tier]
            score = tier_weight * (s.w_relevance * relevance + s.w_recency * recency + s.w_importance * importance)
            lr, ls = lex_info.get(slot, (None, None))
            dr, ds = dense_info.get(slot, (None, None))
            hits.append(Hit(memory, score, relevance, recency, importance, tier_weight, lr, ls, dr, ds))
        hits.sort(key=lambda h: (-h.score, -h.relevance, h.memory.id))
        return hits[:k]


def _normalise(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _top(scores: np.ndarray, pool: int, *, floor: float, strict: bool) -> list[tuple[int, float]]:
    """The best ``pool`` (slot, score) pairs with a score above ``floor`` (or equal, unless ``strict``),
    best first (ties: lower slot first)."""
    keep = np.flatnonzero(scores > floor) if strict else np.flatnonzero(scores >= floor)
    keep = keep[np.isfinite(scores[keep])]
    if not len(keep):
        return []
    if len(keep) > pool:
        part = np.argpartition(-scores[keep], pool - 1)[:pool]
        keep = keep[part]
    order = np.lexsort((keep, -scores[keep]))
    keep = keep[order]
    return [(int(i), float(scores[i])) for i in keep]

