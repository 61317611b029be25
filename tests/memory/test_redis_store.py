"""Redis-only behaviour: the documented key layout, expiry through Redis, URLs with a password."""

from __future__ import annotations

import time

import pytest
import redis
import redis.utils

from gemma_lsp.memory import (
    EmbeddedMemoryStore, Kind, Memory, MemorySettings, MemoryUnavailable, RedisMemoryStore, ResilientStore, Tier,
    TierTTLs, open_store,
)  # fmt: skip


@pytest.fixture
def rstore(redis_server):
    store = RedisMemoryStore(MemorySettings(url=redis_server.url, prefix="layout", ttl=TierTTLs(working=30)))
    yield store
    store.close()


def test_hiredis_parses_replies():
    assert redis.utils.HIREDIS_AVAILABLE


def test_key_layout(rstore, redis_server, namespace):
    raw = redis.Redis.from_url(redis_server.url)
    m = Memory(namespace=namespace, tier=Tier.working, kind=Kind.note, text="layout", embedding=[1.0], created_at=5.0)
    rstore.put(m)
    base = f"layout:{{{namespace}}}"
    assert sorted(k.decode() for k in raw.keys(f"{base}:*")) == sorted(
        [f"{base}:m:{m.id}", f"{base}:t:working", f"{base}:changes"]
    )
    h = raw.hgetall(f"{base}:m:{m.id}")
    assert h[b"text"] == b"layout" and h[b"tier"] == b"working" and h[b"tags"] == b"[]"
    assert h[b"embedding"] == b"\x00\x00\x80\x3f"  # little-endian float32 1.0
    assert 29_000 < raw.pttl(f"{base}:m:{m.id}") <= 30_000  # the tier's TTL, as Redis expiry
    assert raw.zscore(f"{base}:t:working", m.id) == 5.0
    assert raw.type(f"{base}:changes") == b"stream"
    rstore.put(m.model_copy(update={"tier": Tier.long_term}))
    assert raw.pttl(f"{base}:m:{m.id}") == -1  # long_term: no expiry
    assert raw.zscore(f"{base}:t:working", m.id) is None
    rstore.touch(namespace, [m.id], op_id="abc")
    assert raw.exists(f"{base}:op:abc:{m.id}") and raw.ttl(f"{base}:op:abc:{m.id}") > 86400
    raw.close()


def test_a_password_url_works(spawn_redis, namespace):
    server = spawn_redis("--requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{server.port}/2"
    store = RedisMemoryStore(MemorySettings(url=url))
    assert "s3cret" not in store.display_url
    m = Memory(namespace=namespace, tier="long_term", kind="note", text="behind a password")
    store.put(m)
    assert store.get(namespace, m.id) == m
    store.close()
    wrong = RedisMemoryStore(MemorySettings(url=f"redis://:wrong@127.0.0.1:{server.port}/2"))
    with pytest.raises(MemoryUnavailable, match="refused the credentials"):
        wrong.ping()  # the server goes on without memories and says why
    wrong.close()


def test_a_rediss_url_with_a_password_works(spawn_redis, tls_cert, namespace):
    server = spawn_redis("--requirepass", "pw", tls_cert=tls_cert)
    url = f"rediss://:pw@127.0.0.1:{server.port}/0?ssl_ca_certs={tls_cert}"
    store = RedisMemoryStore(MemorySettings(url=url))
    m = Memory(namespace=namespace, tier="episodic", kind="chat_turn", text="over TLS")
    store.put(m)
    assert store.get(namespace, m.id) == m
    assert store.client.connection_pool.connection_class.__name__ == "SSLConnection"
    store.close()
    plain = RedisMemoryStore(MemorySettings(url=f"redis://:pw@127.0.0.1:{server.port}/0", connect_timeout=0.5))
    with pytest.raises(MemoryUnavailable):
        plain.ping()  # no TLS, no answer
    plain.close()


def test_unreachable_redis_raises_memory_unavailable_fast(unused_port, namespace):
    store = RedisMemoryStore(MemorySettings(url=f"redis://127.0.0.1:{unused_port}/0"))
    started = time.monotonic()
    for call in (store.ping, lambda: store.put(Memory(namespace=namespace, tier="working", kind="note", text="x")),
                 lambda: store.query(namespace), lambda: store.changes(namespace)):  # fmt: skip
        with pytest.raises(MemoryUnavailable, match="unavailable"):
            call()
    assert time.monotonic() - started < 2.0
    store.close()


def test_open_store_picks_the_store(tmp_path, redis_server):
    embedded = open_store(MemorySettings(sqlite_path=tmp_path / "m.sqlite3"))
    assert isinstance(embedded, EmbeddedMemoryStore) and (tmp_path / "m.sqlite3").exists()
    embedded.close()
    resilient = open_store(MemorySettings(url=redis_server.url, journal_dir=tmp_path / "j"))
    assert isinstance(resilient, ResilientStore) and isinstance(resilient.inner, RedisMemoryStore)
    assert resilient.ping()
    resilient.close()
