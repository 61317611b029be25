"""Degraded mode for real: kill redis-server mid-session, keep writing, restart it, replay.

The server here runs with an fsync'd append-only file, so a restart keeps what it had: what
these tests check is that every write made while it was away arrives exactly once.
"""

from __future__ import annotations

import json
import time

import pytest

from gemma_lsp.memory import Journal, Kind, Memory, MemorySettings, MemoryUnavailable, RedisMemoryStore, ResilientStore, Tier


def mem(namespace: str, text: str, **kw) -> Memory:
    return Memory(namespace=namespace, text=text, tier=kw.pop("tier", Tier.long_term), kind=kw.pop("kind", Kind.note), **kw)


@pytest.fixture
def server(spawn_redis):
    """A function-scoped redis-server that keeps its data across a kill (appendfsync always)."""
    return spawn_redis("--appendonly", "yes", "--appendfsync", "always")


class Events:
    def __init__(self) -> None:
        self.degraded: list[str] = []
        self.recovered = 0

    def kwargs(self) -> dict:
        return {"on_degraded": self.degraded.append, "on_recovered": self._recovered}

    def _recovered(self) -> None:
        self.recovered += 1


def resilient(url: str, journal, events: Events, retry_interval: float = 3600.0) -> ResilientStore:
    inner = RedisMemoryStore(MemorySettings(url=url, prefix="rs", connect_timeout=0.5))
    return ResilientStore(inner, journal, retry_interval=retry_interval, **events.kwargs())


def direct(url: str) -> RedisMemoryStore:
    return RedisMemoryStore(MemorySettings(url=url, prefix="rs"))


def test_kill_write_restart_replay_every_memory_exactly_once(server, tmp_path, namespace):
    events = Events()
    journal = tmp_path / "journal.jsonl"
    store = resilient(server.url, journal, events)
    a, b, c, d, e, f = (mem(namespace, t, created_at=float(i)) for i, t in enumerate("abcdef"))
    store.put_many([a, b, c])
    store.touch(namespace, [a.id])
    assert not store.degraded and not Journal(journal).pending()

    server.kill()
    store.put_many([d, e])
    store.put(a)  # the same text again: still one memory
    store.touch(namespace, [b.id])
    store.touch(namespace, [b.id])
    store.touch(namespace, [d.id])
    store.delete(namespace, [c.id])
    assert store.degraded and len(events.degraded) == 1  # said once, not once per write
    assert "degraded" in events.degraded[0]
    assert len(Journal(journal).read()) == 6
    # Reads go on, from what the journal holds (less context, no error).
    assert store.get(namespace, d.id) == d
    assert [m.text for m in store.query(namespace)] == ["e", "d", "a"]
    assert store.get(namespace, c.id) is None
    assert store.changes(namespace) == []

    server.start()  # the same port: Redis is back, with its data
    store.put(f)  # before the next retry: queued behind the journal, keeping the order
    assert len(Journal(journal).read()) == 7
    assert store.replay() is True
    assert events.recovered == 1 and not store.degraded
    assert not Journal(journal).pending()

    check = direct(server.url)
    found = {m.text: m for m in check.query(namespace)}
    assert sorted(found) == ["a", "b", "d", "e", "f"]
    assert {t: m.access_count for t, m in found.items()} == {"a": 1, "b": 2, "d": 1, "e": 0, "f": 0}
    raw = check.client
    assert len(raw.keys(f"rs:{{{namespace}}}:m:*")) == 5
    puts = [(ch.id) for ch in check.changes(namespace) if ch.op == "put"]
    assert puts.count(d.id) == 1 and puts.count(f.id) == 1 and puts.count(a.id) == 2  # a was put twice, by us

    assert store.replay() is True  # nothing left: replaying again changes nothing
    assert {m.text: m.access_count for m in check.query(namespace)} == {"a": 1, "b": 2, "d": 1, "e": 0, "f": 0}
    store.close()
    check.close()


class LostReply:
    """A store whose next write reaches Redis but whose reply is lost (the connection dies after)."""

    def __init__(self, inner: RedisMemoryStore) -> None:
        self.inner = inner
        self.origin = inner.origin
        self.lose_next = True

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _maybe_lose(self, result):
        if self.lose_next:
            self.lose_next = False
            raise MemoryUnavailable("connection lost before the reply")
        return result

    def put_many(self, memories):
        return self._maybe_lose(self.inner.put_many(memories))

    def touch(self, namespace, ids, *, at=None, op_id=None):
        return self._maybe_lose(self.inner.touch(namespace, ids, at=at, op_id=op_id))


def test_a_write_whose_reply_was_lost_still_counts_once(server, tmp_path, namespace):
    events = Events()
    m = mem(namespace, "counted once")
    direct(server.url).put(m)
    flaky = LostReply(direct(server.url))
    store = ResilientStore(flaky, tmp_path / "j.jsonl", retry_interval=3600.0, **events.kwargs())
    store.touch(namespace, [m.id])  # applied in Redis, but we were told it failed: journaled
    assert store.degraded and len(Journal(tmp_path / "j.jsonl").read()) == 1
    assert store.replay() is True
    assert direct(server.url).get(namespace, m.id).access_count == 1
    flaky.lose_next = True
    n = mem(namespace, "put once")
    store.put(n)
    assert store.replay() is True
    assert [x.id for x in direct(server.url).query(namespace)].count(n.id) == 1
    assert events.degraded and events.recovered == 2
    store.close()


def test_the_journal_outlives_the_process(spawn_redis, unused_port, tmp_path, namespace):
    """Writes journaled by a process that stopped before Redis came back are replayed by the next one."""
    port = unused_port
    url = f"redis://127.0.0.1:{port}/0"
    journal = tmp_path / "j.jsonl"
    events = Events()
    first = resilient(url, journal, events)
    memories = [mem(namespace, f"offline {i}") for i in range(20)]
    first.put_many(memories[:10])
    for m in memories[10:]:
        first.put(m)
    assert len(events.degraded) == 1
    first.close()

    spawn_redis(port=port)
    second = resilient(url, journal, Events(), retry_interval=0.0)
    assert len(second.query(namespace)) == 20  # the first call replays the journal
    assert not Journal(journal).pending() and second.replayed == 11
    second.close()


def test_recovery_is_automatic_after_the_retry_interval_and_a_new_outage_is_said_again(server, tmp_path, namespace):
    events = Events()
    store = resilient(server.url, tmp_path / "j.jsonl", events, retry_interval=0.3)
    server.kill()
    store.put(mem(namespace, "one"))
    store.put(mem(namespace, "two"))  # within the interval: not even tried, straight to the journal
    server.start()
    time.sleep(0.35)
    store.put(mem(namespace, "three"))  # the interval passed: replay, then write
    assert events.recovered == 1 and not Journal(tmp_path / "j.jsonl").pending()
    assert sorted(m.text for m in direct(server.url).query(namespace)) == ["one", "three", "two"]
    server.kill()
    store.query(namespace)
    assert len(events.degraded) == 2  # a second outage is a second message
    store.close()


def test_a_torn_last_journal_line_is_skipped(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    with journal.locked():
        journal.append([{"op": "delete", "namespace": "ws", "ids": ["x"]}])
    with open(path, "a") as f:
        f.write('{"op": "delete", "names')  # a crash mid-append
    assert journal.read() == [{"op": "delete", "namespace": "ws", "ids": ["x"]}]
    with journal.locked():
        journal.append([{"op": "delete", "namespace": "ws", "ids": ["y"]}])  # not glued to the torn line
    assert [e["ids"] for e in journal.read()] == [["x"], ["y"]]
    with journal.locked():
        journal.rewrite(journal.read())
    assert [json.loads(line)["ids"] for line in path.read_text().splitlines()] == [["x"], ["y"]]
