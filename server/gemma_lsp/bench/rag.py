"""``gemma-lsp bench rag``: indexing rate, retrieval and prompt-injection latency of the memories.

On a generated, deterministic corpus of code chunks (``--chunks``, 100,000 by default: Python
functions of 10-20 lines, ~8 per file, each a ``Memory`` of tier ``semantic`` and kind
``code_chunk`` with its file URI and line range) it measures, through the same calls the server
makes:

* ``index_chunks_per_s`` (lexical): the chunks written into the store (``put_many`` in batches of
  ``--batch``) *plus* the search index built from the store (``MemoryService.start()``, i.e.
  ``SearchIndex.load``: the change feed's end, ``store.query`` of every memory, the BM25 build).
  Both phases are reported, and the combined rate is ``chunks / (write_s + index_build_s)``.
  Generating the corpus (text + ``Memory`` objects) is not timed in it (``corpus.generate_s``).
* ``retrieval_ms`` top-10, per store: ``MemoryService.search(query, k=10)`` per query, which is the
  server's path: sync the index from the store's change feed, ``SearchIndex.search``, the store's
  ``get_many`` for the hits (``drop_missing``) and a ``touch`` of them; plus the asyncio hop onto
  the memory thread. Stores: the embedded SQLite store, and Redis (``open_store`` with a URL, as
  the server opens it: ``RedisMemoryStore`` inside ``ResilientStore``) on a ``redis-server`` this
  bench starts on a free 127.0.0.1 port and stops at the end. Query mix, in equal parts:
  ``identifier`` (one snake_case name), ``camel`` (a camelCase spelling of a snake_case name: only
  the identifier splitting can match it) and ``code`` (6-12 lines of a chunk, the last one cut
  mid-line, as the code around a cursor). ``recall_at_10`` is the share of queries whose source
  chunk is among the hits (a sanity check, not a quality benchmark).
* ``injection_ms``: the built-in ``chat`` prompt template rendered for the query with its memories
  (``gemma_lsp.prompts.render_prompt`` with ``MemoryService.context_for``): search (k=20) + the
  recent episodic memories + ``build_context`` / ``build_recent`` selecting within ``--budget``
  tokens + the template rendered with ``rag_context`` and ``rag_recent`` (embedded store; Redis
  too when available).
* ``dense``: dense retrieval with the server's embedder, ``GgufEmbedder`` (engine/embedder.py), on
  an EmbeddingGemma-shaped random-weight test model written to a temp dir (``gemma-embedding``,
  preset ``embedding``: 6 layers, 64-wide vectors, mean pooling, no output head), one worker
  context per core. Every chunk is embedded (in calls of ``DENSE_EMBED_BATCH`` texts) unless
  ``--dense-seconds`` caps the time: then only the chunks embedded within the cap make the dense
  corpus and ``dense.why_subset`` says so. The vectors are stored with the memories (as the
  server's carry them) and the index is built from the store. Reported: the embedding rate (and
  the server's default of one worker, on a sample), hybrid ``MemoryService.search`` latency (query
  embedding included) and recall, the hybrid search alone with the query vector given, the dense
  retriever alone (``SearchIndex.search`` with an empty query and the query vector) with its
  recall, and the bare float32 mat-vec over all N vectors (the core of dense scoring).

Numbers are measured, never estimated: a part that could not run is ``null`` with its reason under
``skipped``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gemma_lsp.app import Services
from gemma_lsp.config import Settings
from gemma_lsp.engine.native import llama_cpp_available
from gemma_lsp.memory import Memory, MemorySettings, Tier
from gemma_lsp.memory.context import estimate_tokens
from gemma_lsp.memory.model import Kind, Position, Range, Source, namespace_for_workspace
from gemma_lsp.memory.redis_server import RedisServer, free_port
from gemma_lsp.memory.service import MemoryService
from gemma_lsp.prompts import PromptInputs, PromptLibrary, builtin_prompt_dir, render_prompt

from .common import SuiteRun, percentiles, suite_settings

ROOT = "/bench/workspace"
NAMESPACE = namespace_for_workspace(ROOT)  # the namespace the services give this workspace
QUERY_KINDS = ("identifier", "camel", "code")
TARGETS = {
    "retrieval_p95_ms_embedded": 15.0,
    "retrieval_p95_ms_redis": 25.0,
    "injection_p95_ms": 25.0,
    "index_chunks_per_s_min": 2000.0,
}

# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------

_VERBS = (
    "parse load save open close read write build check validate render fetch update delete create "
    "merge split resolve compute apply emit handle register encode decode format normalize flush "
    "reset start stop scan index search collect filter sort group count find match convert"
).split()
_NOUNS = (
    "http response request client server handler config settings user account session token cache "
    "store memory index query result value item list dict map key name path file line buffer stream "
    "reader writer json yaml error warning log range position offset length chunk document workspace "
    "symbol module package import export node tree edge graph vertex batch queue worker task job "
    "event signal message payload header body cookie route view model schema field record row column "
    "table cursor page window frame layer tensor vector matrix shape weight prompt sampler logit"
).split()
_ADJ = "raw parsed cached pending stale local remote default current next last first max min total".split()


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.capitalize() for p in rest)


class Corpus:
    """The generated chunks and, per chunk, its function name (for queries)."""

    def __init__(self, memories: list[Memory], names: list[str], files: int, generate_s: float) -> None:
        self.memories, self.names, self.files, self.generate_s = memories, names, files, generate_s

    def summary(self) -> dict[str, Any]:
        lines = [m.text.count("\n") + 1 for m in self.memories]
        chars = [len(m.text) for m in self.memories]
        return {
            "chunks": len(self.memories), "files": self.files,
            "avg_lines": round(float(np.mean(lines)), 1) if lines else 0.0,
            "avg_chars": round(float(np.mean(chars)), 1) if chars else 0.0,
            "generate_s": round(self.generate_s, 3),
            "what": "Python functions of 10-20 lines, ~8 per file; tier semantic, kind code_chunk, file URI + range",
        }  # fmt: skip


def generate_corpus(n_chunks: int, seed: int = 0, namespace: str = NAMESPACE) -> Corpus:
    """``n_chunks`` deterministic code chunks: each a function whose name is a (mostly unique)
    verb_adj_noun / verb_noun_noun, whose body uses shared identifiers with a Zipf-like frequency."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    # shared identifiers (repeated across the corpus): snake_case and camelCase, a few PascalCase
    pool = []
    for i, (a, b, c) in enumerate(rng.choice(_NOUNS, size=(3000, 3))):
        snake = f"{a}_{b}" if i % 3 else f"{a}_{b}_{c}"
        pool.append(_camel(snake) if i % 4 == 1 else snake)
    classes = [f"{a.capitalize()}{b.capitalize()}" for a, b in rng.choice(_NOUNS, size=(300, 2))]
    zipf = (rng.zipf(1.25, size=n_chunks * 24) - 1) % len(pool)
    n_lines = rng.integers(10, 21, size=n_chunks)
    names_v = rng.choice(_VERBS, size=n_chunks)
    names_a = rng.choice(_ADJ + _NOUNS, size=n_chunks)
    names_n = rng.choice(_NOUNS, size=n_chunks)
    consts = rng.integers(0, 1000, size=n_chunks * 4)
    memories: list[Memory] = []
    names: list[str] = []
    files = 0
    uri, line_no = "", 0
    for i in range(n_chunks):
        if i % 8 == 0:
            files += 1
            uri = f"file://{ROOT}/src/pkg{files % 97:02d}/{names_n[i]}_{files}.py"
            line_no = 2
        name = f"{names_v[i]}_{names_a[i]}_{names_n[i]}"
        ids = [pool[j] for j in zipf[i * 24 : (i + 1) * 24]]
        cls = classes[i % len(classes)]
        c = consts[i * 4 : i * 4 + 4]
        body = [
            f"def {name}(self, {ids[0]}: {cls}, {ids[1]}: int = {c[0]}) -> {cls}:",
            f'    """{names_v[i].capitalize()} the {names_a[i]} {names_n[i]} of {ids[2]}."""',
        ]
        templates = (
            lambda j: f"    {ids[j]} = self.{ids[j + 1]}({ids[j + 2]}, {c[j % 4]})",
            lambda j: f"    if {ids[j]} is None or {ids[j + 1]} > {c[j % 4]}:",
            lambda j: f"        raise ValueError(f\"bad {ids[j + 2]}: {{{ids[j]}!r}}\")",
            lambda j: f"    for {ids[j]} in {ids[j + 1]}.{ids[j + 2]}():",
            lambda j: f"        {ids[j + 1]}.append({cls}({ids[j]}, {ids[j + 2]}={c[j % 4]}))",
            lambda j: f"    {ids[j]}[\"{ids[j + 1]}\"] = {ids[j + 2]}.get({c[j % 4]})",
        )
        for j in range(2, int(n_lines[i]) - 1):  # 2 header lines + these + return = n_lines
            body.append(templates[(i + j) % len(templates)](j % 21))
        body.append(f"    return {cls}({ids[0]}, {ids[1]})")
        text = "\n".join(body)
        end = line_no + len(body)
        source = Source(uri=uri, range=Range(start=Position(line=line_no, character=0), end=Position(line=end, character=0)))
        memories.append(Memory(
            namespace=namespace, tier=Tier.semantic, kind=Kind.code_chunk, text=text, source=source,
            created_at=1.7e9 + i,
        ))  # fmt: skip
        names.append(name)
        line_no = end + 2
    return Corpus(memories, names, files, time.perf_counter() - started)


def make_queries(corpus: Corpus, n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """``n`` (kind, query, id of the source chunk) triples, the kinds in turn."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(corpus.memories), size=n)
    out = []
    for q, i in enumerate(picks):
        memory, name = corpus.memories[int(i)], corpus.names[int(i)]
        kind = QUERY_KINDS[q % len(QUERY_KINDS)]
        if kind == "identifier":
            query = name
        elif kind == "camel":
            query = _camel(name)
        else:
            lines = memory.text.split("\n")
            count = int(rng.integers(6, 13))
            start = int(rng.integers(0, max(1, len(lines) - count + 1)))
            window = lines[start : start + count]
            last = window[-1]
            window[-1] = last[: max(4, int(len(last) * float(rng.uniform(0.3, 0.8))))]
            query = "\n".join(window)
        out.append((kind, query, memory.id))
    return out


# --------------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------------


DENSE_EMBED_BATCH = 256  # texts per embed call: large enough to keep every worker busy, small enough for the cap


class CountingEmbedder:
    """The ``Embedder`` protocol over another embedder, counting texts and time."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.texts = 0
        self.seconds = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        out = self.embedder.embed(list(texts))
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        return out


def _write_embedding_model(workdir: Path) -> Path:
    from gemma_lsp.engine.testmodel import write_test_model

    return write_test_model(workdir / "gemma-embedding-test.gguf", arch="gemma-embedding", preset="embedding")


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


class _Loop:
    """One event loop for the bench's calls into the (async) ``MemoryService``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


def _ms(values: list[float]) -> dict[str, float | None]:
    return percentiles(values)


def _write(store: Any, memories: list[Memory], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(memories), batch):
        store.put_many(memories[i : i + batch])
    return time.perf_counter() - started


def _indexing(loop: _Loop, service: MemoryService, memories: list[Memory], batch: int) -> dict[str, Any]:
    write_s = _write(service.store, memories, batch)
    started = time.perf_counter()
    indexed = loop.run(service.start())
    build_s = time.perf_counter() - started
    n = len(memories)
    return {
        "chunks": n, "indexed": indexed, "batch": batch,
        "write_s": round(write_s, 3), "write_chunks_per_s": round(n / write_s, 1) if write_s else None,
        "index_build_s": round(build_s, 3), "index_build_chunks_per_s": round(n / build_s, 1) if build_s else None,
        "total_s": round(write_s + build_s, 3),
        "combined_chunks_per_s": round(n / (write_s + build_s), 1) if write_s + build_s else None,
    }  # fmt: skip


def _retrieval(loop: _Loop, service: MemoryService, queries: list[tuple[str, str, str]], k: int, warmup: int = 5) -> dict[str, Any]:
    for _, q, _ in queries[:warmup]:
        loop.run(service.search(q, k=k))
    times: dict[str, list[float]] = {kind: [] for kind in QUERY_KINDS}
    found: dict[str, list[bool]] = {kind: [] for kind in QUERY_KINDS}
    hits_total = 0
    for kind, q, target in queries:
        started = time.perf_counter()
        hits = loop.run(service.search(q, k=k))
        times[kind].append((time.perf_counter() - started) * 1000)
        found[kind].append(any(h.id == target for h in hits))
        hits_total += len(hits)
    every = [t for kind in QUERY_KINDS for t in times[kind]]
    return {
        **_ms(every), "queries": len(every), "k": k,
        "mean_hits": round(hits_total / max(1, len(every)), 2),
        "by_kind": {kind: _ms(times[kind]) for kind in QUERY_KINDS if times[kind]},
        "recall_at_10": {kind: round(sum(f) / len(f), 3) for kind, f in found.items() if f},
    }  # fmt: skip


_HEADER = re.compile(r"^# \S+:\d+", re.M)


INJECTION_TEMPLATE = "chat"  # a built-in template that uses both rag_context and rag_recent


def _injection(loop: _Loop, service: MemoryService, queries: list[tuple[str, str, str]], budget: int, warmup: int = 5) -> dict[str, Any]:
    library = PromptLibrary([builtin_prompt_dir()])

    def render(q: str):
        return render_prompt(
            library, INJECTION_TEMPLATE, PromptInputs(question=q), service.context_for,
            rag_budget_tokens=budget, recent_budget_tokens=max(1, budget // 4),
        )  # fmt: skip

    for _, q, _ in queries[:warmup]:
        loop.run(render(q))
    times, tokens, chunks = [], [], []
    for _, q, _ in queries:
        started = time.perf_counter()
        rendered = loop.run(render(q))
        times.append((time.perf_counter() - started) * 1000)
        tokens.append(estimate_tokens(rendered.rag_context) + estimate_tokens(rendered.rag_recent))
        chunks.append(len(_HEADER.findall(rendered.rag_context)))
    return {
        **_ms(times), "queries": len(times), "budget_tokens": budget,
        "avg_block_tokens": round(float(np.mean(tokens)), 1) if tokens else 0.0,
        "avg_chunks": round(float(np.mean(chunks)), 2) if chunks else 0.0,
        "max_block_tokens": int(max(tokens)) if tokens else 0,
    }  # fmt: skip


def _services(memory: MemorySettings, embedder=None) -> Services:
    """The services of the corpus's (imaginary) workspace, on the store ``memory`` configures."""
    return Services.from_settings(Settings(memory=memory), Path(ROOT), embedder=embedder)


def _run_store(loop: _Loop, memory: MemorySettings, corpus: Corpus, queries, *, k: int, budget: int, batch: int) -> tuple[dict, dict, dict]:
    services = _services(memory)
    service = services.memory
    try:
        indexing = _indexing(loop, service, corpus.memories, batch)
        retrieval = _retrieval(loop, service, queries, k)
        injection = _injection(loop, service, queries, budget)
    finally:
        loop.run(services.close())
    return indexing, retrieval, injection


def _dense(loop: _Loop, workdir: Path, corpus: Corpus, *, k: int, seconds: float | None, max_queries: int, log) -> dict[str, Any]:
    """Embed the chunks in order (all of them, or those done within ``seconds``), index them with their
    vectors stored, and time hybrid and dense-only searches over them."""
    from gemma_lsp.engine.embedder import GgufEmbedder

    path = _write_embedding_model(workdir)
    workers = os.cpu_count() or 1
    memories = corpus.memories
    # The server's default (one worker, half the cores' threads), on a sample: what indexing costs
    # while completions keep their share of the machine.
    sample = [m.text for m in memories[: min(len(memories), 256)]]
    default = GgufEmbedder(path)
    try:
        default.embed(["warm up"])
        started = time.perf_counter()
        default.embed(sample)
        default_rate = len(sample) / (time.perf_counter() - started)
    finally:
        default.close()
    engine = GgufEmbedder(path, workers=workers, n_threads=1)
    try:
        embedder = CountingEmbedder(engine)
        embedder.embed(["warm up"] * workers)  # opens the contexts: not part of the rate
        embedder.texts, embedder.seconds = 0, 0.0
        embedded: list[Memory] = []
        started = time.perf_counter()
        while len(embedded) < len(memories) and (seconds is None or time.perf_counter() - started < seconds):
            part = memories[len(embedded) : len(embedded) + DENSE_EMBED_BATCH]
            vectors = np.asarray(embedder.embed([m.text for m in part]), dtype=np.float32)
            embedded += [m.model_copy(update={"embedding": tuple(v)}) for m, v in zip(part, vectors.tolist())]
        wall_s = time.perf_counter() - started
        embed_s = embedder.seconds  # the searches below embed their queries through it too
        n = len(embedded)
        rate = n / embed_s if embed_s else None
        log(f"dense: embedded {n} chunks in {embed_s:.1f} s ({rate:.1f} chunks/s, {workers} workers)")
        subset = Corpus(embedded, corpus.names[:n], 0, 0.0)
        dq = make_queries(subset, max_queries, seed=3)
        services = _services(MemorySettings(sqlite_path=workdir / "dense.sqlite3", journal_dir=workdir / "j"), embedder)
        service = services.memory
        try:
            indexing = _indexing(loop, service, subset.memories, 1000)
            hybrid = _retrieval(loop, service, dq, k, warmup=2)
            # the searches alone: the query vectors embedded once, outside the timing
            qvecs = np.asarray(embedder.embed([q for _, q, _ in dq]), dtype=np.float32)
            search_only, dense_only = [], []
            dense_found: dict[str, list[bool]] = {kind: [] for kind in QUERY_KINDS}
            for (kind, q, target), vec in zip(dq, qvecs):
                t0 = time.perf_counter()
                service.index.search(q, k=k, namespace=NAMESPACE, query_vector=vec)
                search_only.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                hits = service.index.search("", k=k, namespace=NAMESPACE, query_vector=vec)
                dense_only.append((time.perf_counter() - t0) * 1000)
                dense_found[kind].append(any(h.id == target for h in hits))
            stats = service.index.stats()
        finally:
            loop.run(services.close())
        matvec = _matvec_ms(np.asarray([m.embedding for m in embedded], dtype=np.float32), qvecs, k)
        return {
            "chunks": n, "of_chunks": len(memories),
            "why_subset": None if n == len(memories) else
                f"embedding ran at {rate:.1f} chunks/s here: all {len(memories)} would take ~{len(memories) / rate:.0f} s, "
                f"so only the first {n} (embedded within the --dense-seconds cap of {seconds:g} s) are in the dense index",
            "model": "test model gemma-embedding/embedding (random weights, 6 layers, n_embd 64, mean pooling, "
                     "no output head) via GgufEmbedder",
            "workers": workers, "threads_per_worker": 1,
            "dim": stats["dim"], "vectors": stats["vectors"],
            "embed_s": round(embed_s, 3), "embed_wall_s": round(wall_s, 3),
            "embed_chunks_per_s": round(rate, 1) if rate else None,
            "embed_chunks_per_s_server_default": round(default_rate, 1),
            "server_default_what": f"GgufEmbedder(path) as the server opens it (1 worker), first {len(sample)} chunks",
            "embed_batch": DENSE_EMBED_BATCH,
            "write_s": indexing["write_s"], "index_build_s": indexing["index_build_s"],
            "index_build_what": "MemoryService.start() over the N chunks, their vectors stored with them",
            "hybrid_retrieval_ms": {**hybrid, "what": "MemoryService.search: query embedding + lexical + dense + RRF "
                                    "+ store get_many/touch"},
            "hybrid_search_only_ms": {**_ms(search_only), "queries": len(search_only),
                                      "what": "SearchIndex.search with query_vector given (no query embedding, no store calls)"},
            "dense_search_only_ms": {**_ms(dense_only), "queries": len(dense_only),
                                     "recall_at_10": {kind: round(sum(f) / len(f), 3) for kind, f in dense_found.items() if f},
                                     "what": "SearchIndex.search('', query_vector=...): the dense retriever alone "
                                             "(filter mask, mat-vec over all N, top-k, ranking)"},
            "matvec_ms": {**matvec, "what": f"numpy float32 ({n} x {stats['dim']}) @ query + argpartition top-{k}, "
                                            "the core of dense scoring"},
        }  # fmt: skip
    finally:
        engine.close()


def _matvec_ms(matrix: np.ndarray, queries: np.ndarray, k: int) -> dict[str, Any]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        sims = matrix @ q
        np.argpartition(-sims, min(k, len(sims) - 1))[:k]
        times.append((time.perf_counter() - t0) * 1000)
    return {**_ms(times), "queries": len(times)}


def run_rag_bench(
    chunks: int = 100_000,
    queries: int = 300,
    *,
    k: int = 10,
    budget: int = 1024,
    batch: int = 1000,
    dense: bool = True,
    dense_seconds: float | None = None,
    dense_queries: int = 100,
    redis: bool = True,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns the report (see the module docstring)."""
    log = log or (lambda message: None)
    started = time.perf_counter()
    skipped: dict[str, str] = {}
    report: dict[str, Any] = {"suite": "rag", "chunks": chunks, "queries": queries, "k": k, "seed": seed}
    log(f"generating {chunks} chunks")
    corpus = generate_corpus(chunks, seed=seed)
    qs = make_queries(corpus, queries, seed=seed + 1)
    report["corpus"] = corpus.summary()
    report["query_mix"] = {kind: sum(1 for q in qs if q[0] == kind) for kind in QUERY_KINDS}
    loop = _Loop()
    redis_version = None
    with tempfile.TemporaryDirectory(prefix="gemma-bench-rag-") as tmp:
        work = Path(tmp)
        # ---- embedded SQLite store
        log("embedded store: writing, indexing, querying")
        embedded = MemorySettings(sqlite_path=work / "memories.sqlite3", journal_dir=work / "journal")
        emb_index, emb_retrieval, emb_injection = _run_store(loop, embedded, corpus, qs, k=k, budget=budget, batch=batch)
        # ---- Redis
        redis_index = redis_retrieval = redis_injection = None
        binary = shutil.which("redis-server") if redis else None
        if not redis:
            skipped["redis"] = "--no-redis"
        elif binary is None:
            skipped["redis"] = "redis-server is not installed (not on PATH)"
        else:
            server = RedisServer(binary, free_port(), work / "redis")
            try:
                server.start()
                redis_version = server.version
                log(f"redis {redis_version} on port {server.port}: writing, indexing, querying")
                on_redis = MemorySettings(url=server.url, prefix="bench", journal_dir=work / "journal",
                                          sqlite_path=work / "unused.sqlite3")  # fmt: skip
                redis_index, redis_retrieval, redis_injection = _run_store(
                    loop, on_redis, corpus, qs, k=k, budget=budget, batch=batch
                )
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                skipped["redis"] = f"redis run failed: {type(exc).__name__}: {exc}"
                redis_index = redis_retrieval = redis_injection = None
            finally:
                server.stop()
        # ---- dense
        dense_report = None
        if not dense:
            skipped["dense"] = "--no-dense"
        else:
            if not llama_cpp_available():
                skipped["dense"] = "llama-cpp-python is not installed"
            else:
                cap = "all chunks" if dense_seconds is None else f"for up to {dense_seconds:g} s"
                log(f"dense: writing the embedding test model, embedding {cap}")
                try:
                    dense_report = _dense(
                        loop, work, corpus, k=k, seconds=dense_seconds, max_queries=dense_queries, log=log
                    )
                except Exception as exc:  # noqa: BLE001 - reported, not hidden
                    skipped["dense"] = f"dense run failed: {type(exc).__name__}: {exc}"
    loop.close()

    report["index_chunks_per_s"] = emb_index["combined_chunks_per_s"]
    report["indexing"] = {
        "timed": "write = store.put_many of every chunk in batches; index_build = MemoryService.start() "
        "(SearchIndex.load: change-feed end + store.query of all + lexical BM25 build); "
        "combined = chunks / (write_s + index_build_s). Corpus generation is not included.",
        "embedded": emb_index,
        "redis": redis_index,
    }
    report["retrieval_ms"] = {
        "timed": "per query: MemoryService.search(q, k) = index sync from the change feed + SearchIndex.search "
        "(lexical) + store.get_many (drop_missing) + store.touch, plus the hop onto the memory thread",
        "embedded": emb_retrieval,
        "redis": redis_retrieval,
    }
    report["injection_ms"] = {
        **{key: emb_injection[key] for key in ("p50", "p95")},
        "timed": "per query: render_prompt of the built-in 'chat' template with MemoryService.context_for "
        "= search (k=20) + recent episodic query + build_context + build_recent (select within the budget) "
        "+ the template rendered with rag_context and rag_recent; embedded store",
        "embedded": emb_injection,
        "redis": redis_injection,
    }
    report["dense"] = dense_report
    report["skipped"] = skipped
    p95 = lambda d: None if d is None else d["p95"]  # noqa: E731
    report["targets"] = {
        "retrieval_p95_embedded_le_15ms": _meets(p95(emb_retrieval), TARGETS["retrieval_p95_ms_embedded"]),
        "retrieval_p95_redis_le_25ms": _meets(p95(redis_retrieval), TARGETS["retrieval_p95_ms_redis"]),
        "injection_p95_le_25ms": _meets(emb_injection["p95"], TARGETS["injection_p95_ms"]),
        "indexing_ge_2000_chunks_per_s": None if report["index_chunks_per_s"] is None
        else report["index_chunks_per_s"] >= TARGETS["index_chunks_per_s_min"],
    }
    report["environment"] = {
        "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
        "redis_version": redis_version,
    }  # fmt: skip
    report["duration_s"] = round(time.perf_counter() - started, 1)
    return report


def _meets(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _fmt(d: dict | None, unit: str = "ms") -> str:
    if d is None:
        return "n/a"
    return f"p50 {d['p50']} {unit}, p95 {d['p95']} {unit}"


def _table(r: dict[str, Any]) -> str:
    ix = r["indexing"]
    lines = [
        f"bench rag: {r['chunks']} chunks ({r['corpus']['files']} files, ~{r['corpus']['avg_lines']} lines), "
        f"{r['queries']} queries, top-{r['k']}, {r['duration_s']} s",
        f"indexing (lexical, embedded): {r['index_chunks_per_s']} chunks/s combined "
        f"(write {ix['embedded']['write_chunks_per_s']}/s, index build {ix['embedded']['index_build_chunks_per_s']}/s)",
    ]
    if ix["redis"]:
        lines.append(f"indexing (lexical, redis):    {ix['redis']['combined_chunks_per_s']} chunks/s combined "
                     f"(write {ix['redis']['write_chunks_per_s']}/s, index build {ix['redis']['index_build_chunks_per_s']}/s)")  # fmt: skip
    for name in ("embedded", "redis"):
        d = r["retrieval_ms"][name]
        extra = "" if d is None else f"   recall@10 {d['recall_at_10']}"
        lines.append(f"retrieval {name:8s}: {_fmt(d)}{extra}")
    lines.append(f"injection (embedded): {_fmt(r['injection_ms'])}")
    if r["injection_ms"]["redis"]:
        lines.append(f"injection (redis):    {_fmt(r['injection_ms']['redis'])}")
    if r["dense"]:
        dn = r["dense"]
        lines.append(f"dense: {dn['chunks']} of {dn['of_chunks']} chunks at {dn['embed_chunks_per_s']} chunks/s "
                     f"({dn['workers']} workers; server default {dn['embed_chunks_per_s_server_default']}/s)")
        lines.append(f"dense: hybrid search {_fmt(dn['hybrid_retrieval_ms'])}   recall@10 {dn['hybrid_retrieval_ms']['recall_at_10']}")
        lines.append(f"dense: hybrid search only {_fmt(dn['hybrid_search_only_ms'])}; dense only "
                     f"{_fmt(dn['dense_search_only_ms'])}   recall@10 {dn['dense_search_only_ms']['recall_at_10']}; "
                     f"mat-vec {_fmt(dn['matvec_ms'])}")  # fmt: skip
    for what, why in r["skipped"].items():
        lines.append(f"skipped {what}: {why}")
    lines.append("targets: " + ", ".join(f"{k}={v}" for k, v in r["targets"].items()))
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> SuiteRun:
    parser = argparse.ArgumentParser(prog="gemma-lsp bench rag", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--chunks", type=int, default=100_000, help="corpus size (default 100000)")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per store (default 300)")
    parser.add_argument("--budget", type=int, default=1024, help="prompt-block budget in tokens (default 1024)")
    parser.add_argument("--batch", type=int, default=1000, help="put_many batch size (default 1000)")
    parser.add_argument("--no-dense", action="store_true", help="skip the embedding-model part")
    parser.add_argument("--dense-seconds", type=float, default=None,
                        help="cap on the embedding time: only the chunks embedded within it make the dense index "
                             "(default: no cap, every chunk)")  # fmt: skip
    parser.add_argument("--dense-queries", type=int, default=100, help="dense and hybrid queries (default 100)")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis store")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.chunks < 10 or args.queries < 1:
        parser.error("--chunks must be at least 10 and --queries at least 1")
    log = (lambda message: None) if args.quiet else (lambda message: print(f"[bench rag] {message}", file=sys.stderr, flush=True))
    report = run_rag_bench(
        args.chunks, args.queries, budget=args.budget, batch=args.batch, dense=not args.no_dense,
        dense_seconds=args.dense_seconds, dense_queries=args.dense_queries, redis=not args.no_redis,
        seed=args.seed, log=log,
    )  # fmt: skip
    return SuiteRun("rag", report, _table(report), args.json, settings=suite_settings(args))


def main(argv: list[str] | None = None) -> int:
    print(run(argv).output())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
