"""The one store contract, run against every store: the embedded SQLite store and a real Redis."""

from __future__ import annotations

import time

import pytest

from gemma_lsp.memory import Kind, Memory, MemoryStore, Tier


def mem(namespace: str, text: str, **kw) -> Memory:
    kw.setdefault("tier", Tier.long_term)
    kw.setdefault("kind", Kind.note)
    return Memory(namespace=namespace, text=text, **kw)


def test_is_a_memory_store(store):
    assert isinstance(store, MemoryStore)
    assert store.ping() is True


def test_put_get_round_trip_keeps_every_field(store, namespace):
    m = mem(
        namespace,
        "def add(a, b):\n    return a + b\n",
        tier=Tier.semantic,
        kind=Kind.code_chunk,
        source={"uri": "file:///w/a.py", "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}},
        tags=["python", "math"],
        importance=0.75,
        created_at=1_700_000_000.25,
        embedding=[0.5, -0.25, 1.0, 0.0],
    )
    assert store.put(m) == m.id
    got = store.get(namespace, m.id)
    assert got == m
    assert got.embedding == (0.5, -0.25, 1.0, 0.0)
    assert got.last_accessed == got.created_at and got.access_count == 0
    assert store.get(namespace, "0" * 32) is None


def test_same_text_is_one_memory_and_a_re_put_is_idempotent(store, namespace):
    first = mem(namespace, "remember me", tags=["a"], importance=0.2, created_at=100.0, embedding=[1.0, 2.0])
    store.put(first)
    store.touch(namespace, [first.id])
    again = mem(namespace, "remember me", tier=Tier.short_term, kind=Kind.doc, tags=["b"], importance=0.9, created_at=200.0)
    assert again.id == first.id
    store.put(again)
    store.put(again)  # applied twice: the same state as once
    [got] = store.query(namespace)
    assert got.id == first.id
    assert (got.tier, got.kind, got.tags, got.importance) == (Tier.short_term, Kind.doc, ("b",), 0.9)  # the last put's
    assert got.created_at == 100.0 and got.access_count == 1  # kept from the first
    assert got.embedding == (1.0, 2.0)  # kept: the re-put had none


def test_put_many_get_many(store, namespace):
    memories = [mem(namespace, f"chunk {i}", created_at=1000.0 + i) for i in range(50)]
    assert store.put_many(memories) == [m.id for m in memories]
    assert store.put_many([]) == []
    ids = [memories[3].id, "f" * 32, memories[1].id]
    assert [m.text for m in store.get_many(namespace, ids)] == ["chunk 3", "chunk 1"]
    assert len(store.query(namespace)) == 50


def test_namespaces_never_see_each_other(store, namespace):
    other = namespace + "-other"
    store.put(mem(namespace, "shared text", tags=["mine"]))
    store.put(mem(other, "shared text", tags=["theirs"]))
    store.put(mem(other, "only theirs"))
    assert [m.tags for m in store.query(namespace)] == [("mine",)]
    assert {m.text for m in store.query(other)} == {"shared text", "only theirs"}
    store.delete(other, [mem(other, "shared text").id])
    assert store.get(namespace, mem(namespace, "shared text").id) is not None


def test_query_filters_and_order(store, namespace):
    store.put_many(
        [
            mem(namespace, "a", tier=Tier.working, kind=Kind.note, tags=["x", "y"], created_at=1.0),
            mem(namespace, "b", tier=Tier.episodic, kind=Kind.chat_turn, tags=["x"], created_at=3.0),
            mem(namespace, "c", tier=Tier.episodic, kind=Kind.accepted_completion, created_at=2.0),
            mem(namespace, "d", tier=Tier.semantic, kind=Kind.doc, tags=["y"], created_at=4.0),
        ]
    )
    texts = lambda **kw: [m.text for m in store.query(namespace, **kw)]  # noqa: E731
    assert texts() == ["d", "b", "c", "a"]  # newest created_at first
    assert texts(tiers=[Tier.episodic]) == ["b", "c"]
    assert texts(tiers=["working", "semantic"]) == ["d", "a"]
    assert texts(kinds=[Kind.chat_turn, "doc"]) == ["d", "b"]
    assert texts(tags=["x"]) == ["b", "a"]
    assert texts(tags=["x", "y"]) == ["a"]
    assert texts(tiers=[Tier.episodic], kinds=[Kind.accepted_completion]) == ["c"]
    assert texts(limit=2) == ["d", "b"]
    assert texts(tiers=[]) == []


def test_a_re_put_into_another_tier_moves_it(store, namespace):
    m = mem(namespace, "promote me", tier=Tier.working)
    store.put(m)
    store.put(m.model_copy(update={"tier": Tier.long_term}))
    assert store.query(namespace, tiers=[Tier.working]) == []
    assert [x.id for x in store.query(namespace, tiers=[Tier.long_term])] == [m.id]


def test_delete(store, namespace):
    a, b = mem(namespace, "a"), mem(namespace, "b")
    store.put_many([a, b])
    store.delete(namespace, [a.id, "0" * 32])
    store.delete(namespace, [])
    assert store.get(namespace, a.id) is None
    assert [m.id for m in store.query(namespace)] == [b.id]


def test_touch_counts_accesses_and_an_op_id_counts_once(store, namespace):
    m = mem(namespace, "touch me", created_at=10.0)
    store.put(m)
    store.touch(namespace, [m.id], at=50.0)
    store.touch(namespace, [m.id, "0" * 32], at=20.0)  # a missing id is ignored; last_accessed never goes back
    got = store.get(namespace, m.id)
    assert (got.access_count, got.last_accessed) == (2, 50.0)
    for _ in range(3):
        store.touch(namespace, [m.id], at=60.0, op_id="op-1")
    got = store.get(namespace, m.id)
    assert (got.access_count, got.last_accessed) == (3, 60.0)
    assert store.get(namespace, "0" * 32) is None  # touch never creates a memory


def test_tiers_expire_by_their_ttl(make_store, namespace):
    store = make_store(working=0.6, episodic=0.6)
    keep = mem(namespace, "long lived", tier=Tier.long_term)
    gone = mem(namespace, "scratch", tier=Tier.working)
    refreshed = mem(namespace, "chat turn", tier=Tier.episodic, kind=Kind.chat_turn)
    store.put_many([keep, gone, refreshed])
    store.touch(namespace, [gone.id])
    assert len(store.query(namespace)) == 3
    time.sleep(0.35)
    store.put(refreshed)  # a put restarts the TTL
    time.sleep(0.4)
    assert store.get(namespace, gone.id) is None
    assert store.purge_expired(namespace) == 1  # what expiry left behind: the row / the index entry
    assert store.purge_expired(namespace) == 0
    assert store.get(namespace, gone.id) is None
    assert [m.id for m in store.query(namespace)] == [m.id for m in sorted([keep, refreshed], key=lambda m: -m.created_at)]
    assert store.query(namespace, tiers=[Tier.working]) == []
    store.touch(namespace, [gone.id])  # touching an expired memory does not revive it
    assert store.get(namespace, gone.id) is None
    store.put(gone)  # the same text again is a fresh memory
    got = store.get(namespace, gone.id)
    assert got is not None and got.access_count == 0
    time.sleep(0.5)
    assert store.get(namespace, refreshed.id) is None
    assert store.get(namespace, keep.id) is not None


def test_query_never_returns_expired_memories(make_store, namespace):
    store = make_store(short_term=0.3)
    store.put_many([mem(namespace, "soon gone", tier=Tier.short_term), mem(namespace, "stays")])
    time.sleep(0.45)
    assert [m.text for m in store.query(namespace)] == ["stays"]
    assert store.query(namespace, tiers=[Tier.short_term]) == []


def test_no_ttl_means_never_expires(make_store, namespace):
    store = make_store(working=None)
    m = mem(namespace, "forever", tier=Tier.working)
    store.put(m)
    assert store.get(namespace, m.id) is not None


def test_change_feed_shows_other_writers(make_store, namespace):
    alice, bob = make_store(), make_store()  # two server processes sharing one backend
    assert alice.origin != bob.origin
    assert bob.changes(namespace) == []
    a, b = mem(namespace, "alice's note"), mem(namespace, "bob's note")
    alice.put(a)
    bob.put(b)
    alice.delete(namespace, [a.id])
    feed = bob.changes(namespace)
    assert [(c.op, c.id, c.origin) for c in feed] == [
        ("put", a.id, alice.origin),
        ("put", b.id, bob.origin),
        ("delete", a.id, alice.origin),
    ]
    assert all(c.namespace == namespace for c in feed)
    assert [c.id for c in bob.changes(namespace, since=feed[0].cursor)] == [b.id, a.id]
    assert bob.changes(namespace, since=feed[-1].cursor) == []
    assert len(bob.changes(namespace, limit=2)) == 2
    assert bob.get(namespace, b.id) is not None and bob.get(namespace, a.id) is None
    assert alice.changes(namespace + "-other") == []


def test_concurrent_writers_from_threads(store, namespace):
    """The server calls a store from worker threads; writes from several at once all land, once each."""
    from concurrent.futures import ThreadPoolExecutor

    shared = mem(namespace, "everyone touches this")
    store.put(shared)

    def work(worker: int) -> None:
        store.put_many([mem(namespace, f"w{worker} #{i}") for i in range(25)])
        store.put(mem(namespace, "written by all"))
        store.touch(namespace, [shared.id])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert len(store.query(namespace)) == 8 * 25 + 2
    assert store.get(namespace, shared.id).access_count == 8
