"""Search: the code-aware tokenizer, BM25 (checked against a plain reference), dense retrieval,
reciprocal rank fusion, the ranking factors, filters, and the index following a real store."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from gemma_lsp.bench.search import bench_search, synthetic_chunks
from gemma_lsp.memory import EmbeddedMemoryStore, Memory, MemorySettings
from gemma_lsp.memory.search import (
    Hit,
    RankingSettings,
    SearchIndex,
    TierHalfLives,
    TierWeights,
    split_identifier,
    tokenize,
)

NS = "ws-search"
NOW = 2_000_000_000.0
DAY = 86400.0


def mem(text: str, *, ns: str = NS, tier: str = "semantic", kind: str = "code_chunk", **kw) -> Memory:
    kw.setdefault("created_at", NOW - 10)
    return Memory(namespace=ns, tier=tier, kind=kind, text=text, **kw)


CORPUS = [
    "def parseHTTPResponse(raw_bytes):\n    return HttpResponse.from_bytes(raw_bytes)",
    "class SessionStore:\n    def load_session(self, session_id):\n        return self.cache[session_id]",
    "def snake_case_name(value):\n    return value.lower().replace(' ', '_')",
    "async def fetch_user_account(client, user_id):\n    return await client.get(f'/users/{user_id}')",
    "def encode_json(obj):\n    return json.dumps(obj, indent=2)",
    "def decode_json(text):\n    return json.loads(text)",
    "MAX_RETRIES = 5\nTIMEOUT_SECONDS = 30",
    "# notes: the response parser must handle chunked transfer encoding",
]


# ---- tokenizer ---------------------------------------------------------------------------


def test_identifiers_are_split_and_kept_whole():
    assert split_identifier("parseHTTPResponse") == ("parsehttpresponse", "parse", "http", "response")
    assert split_identifier("snake_case_name") == ("snakecasename", "snake", "case", "name")
    # the same name in either style is one whole term, so a camelCase query finds snake_case code
    assert split_identifier("parseRawToken")[0] == split_identifier("parse_raw_token")[0]
    assert split_identifier("HTTP2Server") == ("http2server", "http", "2", "server")
    assert split_identifier("__init__") == ("init",)
    assert split_identifier("x") == ("x",)
    assert split_identifier("_") == ()
    assert split_identifier("café_noir") == ("cafénoir", "café", "noir")


def test_tokenize_keeps_numbers_and_drops_punctuation():
    assert tokenize("x = foo(42) + bar[7]; // done!") == ["x", "foo", "42", "bar", "7", "done"]
    assert tokenize("getUserID()") == ["getuserid", "get", "user", "id"]
    assert tokenize("") == [] and tokenize("+-*/ ()") == []


# ---- BM25 -----------------------------------------------------------------------------------


def reference_bm25(docs: list[str], query: str, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """BM25 the plain way: one loop over every document."""
    toks = [Counter(tokenize(d)) for d in docs]
    lengths = [sum(t.values()) for t in toks]
    avgdl = sum(lengths) / len(docs)
    out = []
    for t, dl in zip(toks, lengths):
        score = 0.0
        for term in set(tokenize(query)):
            df = sum(1 for other in toks if term in other)
            if not df or term not in t:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = t[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
        out.append(score)
    return out


@pytest.mark.parametrize("query", ["parseHTTPResponse", "response", "json text", "session_id cache", "user_id 30"])
def test_bm25_matches_a_plain_reference(query):
    index = SearchIndex()
    index.rebuild([mem(t) for t in CORPUS])
    hits = index.search(query, k=len(CORPUS), namespace=NS, now=NOW)
    expected = reference_bm25(CORPUS, query)
    got = {h.memory.text: h.lexical_score for h in hits}
    for text, score in zip(CORPUS, expected):
        if score > 0:
            assert got[text] == pytest.approx(score, rel=1e-5)
        else:
            assert text not in got
    # lexical order = BM25 order
    assert [h.lexical_rank for h in sorted(hits, key=lambda h: -h.lexical_score)] == list(range(1, len(hits) + 1))


def test_code_queries_find_identifiers_by_parts_and_whole():
    index = SearchIndex()
    index.rebuild([mem(t) for t in CORPUS])
    top = index.search("parseHTTPResponse", k=3, namespace=NS, now=NOW)
    assert top[0].memory.text == CORPUS[0]
    assert CORPUS[0] in [h.memory.text for h in index.search("http", k=3, namespace=NS, now=NOW)]
    assert index.search("load_session", k=1, namespace=NS, now=NOW)[0].memory.text == CORPUS[1]
    assert index.search("snakeCaseName", k=1, namespace=NS, now=NOW)[0].memory.text == CORPUS[2]
    assert index.search("nothing matches zzz", k=5, namespace=NS, now=NOW) == []
    assert index.search("", k=5, namespace=NS, now=NOW) == []


def test_incremental_adds_and_removes_give_the_same_scores_as_a_rebuild():
    chunks = synthetic_chunks(400, namespace=NS, seed=3)
    # small thresholds are not configurable; 400 adds go to the delta, removals leave dead slots
    # the cut of long queries to their rarest terms uses an approximate df: off here, for exact equality
    settings = RankingSettings(max_query_terms=10_000, common_term_ratio=1.0)
    incremental = SearchIndex(settings)
    incremental.rebuild(chunks[:100])
    for m in chunks[100:]:
        incremental.add(m)
    for m in chunks[:50]:
        assert incremental.remove(m.id, NS)
    assert not incremental.remove("0" * 32, NS)
    incremental.add(chunks[10])  # back again
    assert incremental.stats()["delta_postings"] > 0 and incremental.stats()["dead_slots"] == 50
    rebuilt = SearchIndex(settings)
    rebuilt.rebuild(chunks[50:] + [chunks[10]])
    assert len(incremental) == len(rebuilt) == 351
    for q in [chunks[7].text, chunks[200].text.splitlines()[0], "parse http", chunks[10].text]:
        a = incremental.search(q, k=15, namespace=NS, now=NOW)
        b = rebuilt.search(q, k=15, namespace=NS, now=NOW)
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.lexical_score for h in a] == pytest.approx([h.lexical_score for h in b], rel=1e-5)
    assert all(h.id not in {m.id for m in chunks[:10]} for h in incremental.search(chunks[7].text, k=50, namespace=NS))


def test_merge_and_compaction_keep_results():
    chunks = synthetic_chunks(3000, namespace=NS, seed=5)
    settings = RankingSettings(max_query_terms=10_000, common_term_ratio=1.0)  # exact df (see above)
    index = SearchIndex(settings)
    for m in chunks:  # enough postings to force merges of the delta segment
        index.add(m)
    before = index.search(chunks[42].text, k=10, namespace=NS, now=NOW)
    assert index.stats()["postings"] > 0  # merged at least once
    for m in chunks[:2000]:
        index.remove(m.id, NS)
    assert index.stats()["slots"] < 3000  # compacted
    rebuilt = SearchIndex(settings)
    rebuilt.rebuild(chunks[2000:])
    q = chunks[2500].text
    a, b = index.search(q, k=10, namespace=NS, now=NOW), rebuilt.search(q, k=10, namespace=NS, now=NOW)
    assert [h.lexical_score for h in a] == pytest.approx([h.lexical_score for h in b], rel=1e-5)
    assert a[0].id == b[0].id == chunks[2500].id
    assert before[0].id == chunks[42].id


def test_re_adding_a_memory_replaces_it():
    index = SearchIndex()
    index.add(mem("def alpha(): pass", importance=0.1, tags=["a"]))
    index.add(mem("def alpha(): pass", importance=0.9, tags=["b"]))
    assert len(index) == 1
    [hit] = index.search("alpha", namespace=NS, now=NOW)
    assert hit.importance == pytest.approx(0.9) and hit.memory.tags == ("b",)
    assert index.search("alpha", namespace=NS, tags=["a"]) == []


# ---- filters --------------------------------------------------------------------------------


def test_namespaces_tiers_kinds_and_tags_filter():
    index = SearchIndex()
    index.rebuild(
        [
            mem("def shared_name(): return 1", tags=["py"]),
            mem("def shared_name(): return 2", ns="other-ws"),
            mem("shared_name is used for the widget", tier="episodic", kind="chat_turn", tags=["py", "chat"]),
            mem("note: shared_name must stay stable", tier="long_term", kind="note"),
        ]
    )
    ids = lambda hits: sorted(h.memory.text for h in hits)  # noqa: E731
    assert len(index.search("shared_name", namespace=NS)) == 3
    assert ids(index.search("shared_name", namespace="other-ws")) == ["def shared_name(): return 2"]
    assert len(index.search("shared_name")) == 4  # every namespace
    assert index.search("shared_name", namespace="missing-ns") == []
    assert ids(index.search("shared_name", namespace=NS, tiers=["episodic", "long_term"])) == [
        "note: shared_name must stay stable", "shared_name is used for the widget"]  # fmt: skip
    assert ids(index.search("shared_name", namespace=NS, kinds=["code_chunk"])) == ["def shared_name(): return 1"]
    assert ids(index.search("shared_name", namespace=NS, tags=["py"])) == [
        "def shared_name(): return 1", "shared_name is used for the widget"]  # fmt: skip
    assert ids(index.search("shared_name", namespace=NS, tags=["py", "chat"])) == ["shared_name is used for the widget"]
    assert index.search("shared_name", namespace=NS, tags=["nope"]) == []
    first = index.search("shared_name", namespace=NS)[0]
    assert first.id not in [h.id for h in index.search("shared_name", namespace=NS, exclude_ids=[first.id])]


def test_corpus_statistics_are_per_namespace():
    index = SearchIndex()
    # "rare" is rare in NS but everywhere in other-ws: its idf in NS must not see other-ws
    index.rebuild([mem("rare token"), mem("common words only")] + [mem(f"rare {i}", ns="other-ws") for i in range(50)])
    alone = SearchIndex()
    alone.rebuild([mem("rare token"), mem("common words only")])
    a = index.search("rare", namespace=NS)[0].lexical_score
    assert a == pytest.approx(alone.search("rare", namespace=NS)[0].lexical_score)


# ---- dense and fusion -----------------------------------------------------------------------

SYNONYMS = {"car": "vehicle", "automobile": "vehicle", "vehicle": "vehicle", "dog": "animal", "puppy": "animal"}


class ConceptEmbedder:
    """A toy embedding model: one dimension per concept, so synonyms are close."""

    concepts = ["vehicle", "animal", "other"]

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), len(self.concepts)), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokenize(text):
                out[i, self.concepts.index(SYNONYMS.get(word, "other"))] += 1
            out[i, 2] += 0.01
        return out


def test_dense_retrieval_finds_what_words_do_not():
    embedder = ConceptEmbedder()
    index = SearchIndex(embedder=embedder)
    index.rebuild([mem("the automobile needs fuel"), mem("a puppy barks loudly"), mem("car wash schedule")])
    hits = index.search("vehicle", k=3, namespace=NS, now=NOW)
    texts = [h.memory.text for h in hits]
    assert set(texts[:2]) == {"the automobile needs fuel", "car wash schedule"}
    assert all(h.lexical_rank is None and h.dense_rank is not None for h in hits[:2])
    assert hits[0].dense_score > hits[1].dense_score  # "automobile" is one word of four, "car" one of three
    assert hits[2].memory.text == "a puppy barks loudly" and hits[2].dense_score < 0.1


def test_rrf_rewards_agreement_and_every_factor_is_visible():
    settings = RankingSettings(w_recency=0.0, w_importance=0.0)
    index = SearchIndex(settings, embedder=ConceptEmbedder())
    index.rebuild([mem("car engine repair"), mem("engine of the automobile"), mem("engine engine engine puppy")])
    hits = index.search("car engine", k=3, namespace=NS, now=NOW)
    top = hits[0]
    assert top.memory.text == "car engine repair"  # first in both lists
    assert (top.lexical_rank, top.dense_rank) == (1, 1)
    assert top.relevance == pytest.approx(1.0)  # rank 1 in every active retriever
    miss = 1 / (60 + 50 + 1)  # not retrieved = rank pool + 1 (pool = 50 candidates)
    for h in hits:
        rrf = sum(1 / (60 + r) if r is not None else miss for r in (h.lexical_rank, h.dense_rank))
        assert h.relevance == pytest.approx((rrf - 2 * miss) / (2 / 61 - 2 * miss))
        assert h.score == pytest.approx(h.tier_weight * h.relevance)


def test_stored_embeddings_and_query_vectors():
    index = SearchIndex()  # no embedder: stored vectors are searched with a given query vector
    index.rebuild([mem("first", embedding=(1.0, 0.0)), mem("second", embedding=(0.0, 2.0)), mem("third")])
    hits = index.search("", k=2, namespace=NS, query_vector=[0.1, 1.0], now=NOW)
    assert [h.memory.text for h in hits] == ["second", "first"]
    assert hits[0].dense_score == pytest.approx(1.0 / math.sqrt(1.01), rel=1e-5)


def test_a_failing_embedder_costs_only_the_dense_half():
    class Broken:
        def embed(self, texts):
            raise RuntimeError("model unloaded")

    index = SearchIndex(embedder=Broken())
    index.rebuild([mem("def lexical_only(): pass")])
    [hit] = index.search("lexical_only", namespace=NS, now=NOW)
    assert hit.dense_rank is None and hit.relevance == pytest.approx(1.0)


def test_embedder_is_called_in_batches():
    embedder = ConceptEmbedder()
    index = SearchIndex(embedder=embedder, embed_batch=10)
    index.rebuild([mem(f"car number {i}") for i in range(35)])
    assert embedder.calls == 1 + 4  # one to learn the dimension, then batches of 10 for the other 34
    assert index.stats()["vectors"] == 35 and index.stats()["dim"] == 3


# ---- ranking factors ------------------------------------------------------------------------


def test_recency_decays_by_tier_half_life():
    settings = RankingSettings(half_life=TierHalfLives(episodic=DAY, semantic=None))
    index = SearchIndex(settings)
    index.rebuild([
        mem("def recent_fn(): pass", tier="episodic", kind="accepted_completion", created_at=NOW - DAY),
        mem("def recent_fn(): return 0", tier="episodic", kind="accepted_completion", created_at=NOW - 3 * DAY),
        mem("def recent_fn(): return 1", created_at=NOW - 300 * DAY),
    ])  # fmt: skip
    hits = {h.memory.text: h for h in index.search("recent_fn", k=3, namespace=NS, now=NOW)}
    assert hits["def recent_fn(): pass"].recency == pytest.approx(0.5)
    assert hits["def recent_fn(): return 0"].recency == pytest.approx(0.125)
    assert hits["def recent_fn(): return 1"].recency == 1.0  # semantic: no decay
    index.touch(NS, [hits["def recent_fn(): return 0"].id], at=NOW)
    again = {h.memory.text: h for h in index.search("recent_fn", k=3, namespace=NS, now=NOW)}
    assert again["def recent_fn(): return 0"].recency == pytest.approx(1.0)


def test_score_combines_relevance_recency_importance_and_tier():
    settings = RankingSettings(
        w_relevance=1.0, w_recency=0.5, w_importance=0.25,
        tier_weights=TierWeights(episodic=0.5), half_life=TierHalfLives(episodic=DAY, long_term=DAY),
    )  # fmt: skip
    index = SearchIndex(settings)
    index.rebuild([
        mem("alpha beta", tier="long_term", kind="note", importance=1.0, created_at=NOW),
        mem("alpha gamma", tier="episodic", kind="chat_turn", importance=0.0, created_at=NOW - DAY),
    ])  # fmt: skip
    for h in index.search("alpha", k=2, namespace=NS, now=NOW):
        assert h.score == pytest.approx(h.tier_weight * (h.relevance + 0.5 * h.recency + 0.25 * h.importance))
    by_text = {h.memory.text: h for h in index.search("alpha", k=2, namespace=NS, now=NOW)}
    assert by_text["alpha gamma"].tier_weight == 0.5 and by_text["alpha beta"].tier_weight == 1.0
    assert index.search("alpha", k=2, namespace=NS, now=NOW)[0].memory.text == "alpha beta"


def test_importance_and_recency_break_near_ties_but_do_not_bury_relevance():
    index = SearchIndex()  # default weights
    old_exact = mem("def load_user_config(path): ...", importance=0.0, tier="long_term", kind="note",
                    created_at=NOW - 365 * DAY)  # fmt: skip
    filler = [mem(f"def load_{i}(user): return {i}", importance=1.0, created_at=NOW) for i in range(30)]
    index.rebuild([old_exact, *filler])
    hits = index.search("load_user_config", k=40, namespace=NS, now=NOW)
    assert hits[0].id == old_exact.id
    # the fillers match one common part ("load"): under 10 % of the best BM25, they are no candidates
    assert len(hits) == 1
    index.settings = RankingSettings(lexical_min_ratio=0.0)
    hits = index.search("load_user_config", k=40, namespace=NS, now=NOW)
    assert len(hits) == 31 and hits[0].id != old_exact.id  # junk with fresh, high priors would bury it
    a, b = mem("def twin(): return 1", importance=0.9), mem("def twin(): return 2", importance=0.1)
    index.rebuild([a, b])
    assert index.search("twin", k=2, namespace=NS, now=NOW)[0].id == a.id  # equal BM25: importance decides


def test_ranking_settings_validate():
    with pytest.raises(ValueError):
        RankingSettings(w_recency=-1)
    with pytest.raises(ValueError):
        RankingSettings(half_life={"episodic": 0})
    s = RankingSettings.model_validate({"rrf_k": 10, "tier_weights": {"episodic": 0.3}, "half_life": {"working": None}})
    assert s.tier_weights.for_tier("episodic") == 0.3 and s.half_life.for_tier("working") is None


# ---- following a store ----------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path):
    store = EmbeddedMemoryStore(MemorySettings(sqlite_path=tmp_path / "m.sqlite3"))
    yield store
    store.close()


def test_index_is_derived_from_the_store_and_follows_its_change_feed(sqlite_store):
    store = sqlite_store
    a, b, c = mem("def alpha_handler(): pass"), mem("def beta_handler(): pass"), mem("def gamma_handler(): pass")
    store.put_many([a, b])
    index = SearchIndex()
    assert index.load(store, NS) == 2
    assert {h.id for h in index.search("handler", namespace=NS)} == {a.id, b.id}
    assert index.sync(store, NS) == 0  # nothing new since load
    store.put(c)
    store.delete(NS, [a.id])
    store.put(mem("def beta_handler(): pass", importance=0.9, tags=["hot"]))  # re-put changes fields
    assert index.sync(store, NS) == 3
    assert {h.id for h in index.search("handler", namespace=NS)} == {b.id, c.id}
    assert index.get(NS, b.id).tags == ("hot",)
    assert index.sync(store, NS) == 0
    # a second index built from the same store agrees: the store is the only truth
    fresh = SearchIndex()
    fresh.load(store, NS)
    assert [h.id for h in fresh.search("handler", namespace=NS, now=NOW)] == [
        h.id for h in index.search("handler", namespace=NS, now=NOW)]  # fmt: skip


def test_apply_a_put_whose_memory_is_gone_removes_it(sqlite_store):
    store = sqlite_store
    m = mem("def vanishing(): pass")
    store.put(m)
    index = SearchIndex()
    index.load(store, NS)
    store.delete(NS, [m.id])
    put = next(ch for ch in store.changes(NS) if ch.op == "put")
    index.apply(put, store.get)  # the put is old news: get() finds nothing
    assert index.search("vanishing", namespace=NS) == []


def test_drop_missing_removes_hits_the_store_no_longer_has(sqlite_store):
    store = sqlite_store
    keep, gone = mem("def keep_me(): pass"), mem("def keep_gone(): pass")
    index = SearchIndex()
    index.rebuild([keep, gone])
    store.put(keep)  # "gone" is in the index only (e.g. expired: expiry is not in the feed)
    hits = index.drop_missing(store, index.search("keep", namespace=NS))
    assert [h.id for h in hits] == [keep.id] and len(index) == 1


# ---- misc -----------------------------------------------------------------------------------


def test_hits_are_deterministic_and_k_is_respected():
    index = SearchIndex()
    index.rebuild([mem(f"def same_{i}(): same") for i in range(20)])
    first = index.search("same", k=5, namespace=NS, now=NOW)
    assert len(first) == 5 and all(isinstance(h, Hit) for h in first)
    assert [h.id for h in first] == [h.id for h in index.search("same", k=5, namespace=NS, now=NOW)]
    assert index.search("same", k=0, namespace=NS) == []


def test_bench_search_runs():
    result = bench_search(300, dim=16, queries=3)
    for key in ("build_lexical_s", "lexical_short_ms_p50", "lexical_long_ms_p50", "hybrid_long_ms_p50", "add_ms_each"):
        assert result[key] >= 0


def test_memory_search_and_context_do_not_import_the_engine_or_lsp():
    code = (
        "import sys, gemma_lsp.memory.search, gemma_lsp.memory.context\n"
        "bad = [m for m in sys.modules if m.startswith(('gemma_lsp.engine', 'gemma_lsp.lsp', 'gemma_lsp.completion',"
        " 'llama_cpp', 'pygls'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
