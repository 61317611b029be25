"""The search index follows the store's history: when a redis-server without persistence restarts
empty (or is flushed), the store's epoch changes and the index is rebuilt, so it never holds, finds
or feeds to prompts a memory the store lost. Real redis-server processes, no persistence."""

from __future__ import annotations

import redis

from gemma_lsp.memory import EmbeddedMemoryStore, MemorySettings, RedisMemoryStore
from gemma_lsp.memory.service import MemoryService


def service_on(url: str, tmp_path) -> MemoryService:
    settings = MemorySettings(url=url, prefix="ep", journal_dir=tmp_path / "journal", retry_interval=0,
                              connect_timeout=0.5)
    return MemoryService(settings, root=None)


async def remember_notes(service: MemoryService, word: str, n: int) -> None:
    for i in range(n):
        await service.remember(f"note {i} about {word}{i} and the {word} project")


async def assert_index_matches_store(service: MemoryService, lost_word: str) -> dict:
    stats = await service.stats()
    assert stats["indexed"] == stats["memories"], stats
    assert not [h for h in await service.search(f"{lost_word}3 {lost_word}", k=50) if lost_word in h.memory.text]
    context = await service.context_for(f"{lost_word} project", budget_tokens=2000)
    assert lost_word not in context["rag_context"]
    return stats


async def test_a_redis_restarted_empty_leaves_no_lost_memory_in_the_index(spawn_redis, tmp_path):
    server = spawn_redis()  # --save '' --appendonly no: a restart loses everything
    service = service_on(server.url, tmp_path)
    try:
        await remember_notes(service, "zebra", 30)
        stats = await service.stats()
        assert stats["indexed"] == stats["memories"] == 30
        assert await service.search("zebra3")

        server.kill()
        server.start()  # the same port, empty
        await remember_notes(service, "okapi", 5)
        stats = await assert_index_matches_store(service, "zebra")
        assert stats["memories"] == 5 and service.rebuilds == 1
        assert (await service.search("okapi3"))[0].memory.text.startswith("note 3 about okapi3")
    finally:
        await service.close()


async def test_writes_made_while_redis_was_down_survive_a_restart_without_persistence(spawn_redis, tmp_path):
    server = spawn_redis()
    service = service_on(server.url, tmp_path)
    try:
        await remember_notes(service, "zebra", 20)
        server.kill()
        await remember_notes(service, "llama", 3)  # journaled; the index has them at once
        assert service.degraded
        server.start()  # empty; the journal replays into it
        stats = await assert_index_matches_store(service, "zebra")
        assert stats["memories"] == 3 and not service.degraded
        assert (await service.search("llama2"))[0].memory.text.startswith("note 2 about llama2")
    finally:
        await service.close()


async def test_a_flushed_redis_is_noticed_without_any_outage(spawn_redis, tmp_path):
    server = spawn_redis()
    service = service_on(server.url, tmp_path)
    try:
        await remember_notes(service, "zebra", 10)
        assert (await service.stats())["indexed"] == 10
        redis.Redis.from_url(server.url).flushall()  # e.g. an operator, or a failover to an empty replica
        await remember_notes(service, "okapi", 2)
        assert (await assert_index_matches_store(service, "zebra"))["memories"] == 2
    finally:
        await service.close()


def test_the_epoch_is_set_once_and_changes_only_with_the_data(spawn_redis, tmp_path):
    server = spawn_redis()
    store = RedisMemoryStore(MemorySettings(url=server.url, prefix="ep"))
    first = store.epoch("ns")
    assert first == store.epoch("ns") and first != store.epoch("other")
    server.kill()
    server.start()
    assert store.epoch("ns") != first
    embedded = EmbeddedMemoryStore(MemorySettings(sqlite_path=tmp_path / "m.sqlite3"))
    again = EmbeddedMemoryStore(MemorySettings(sqlite_path=tmp_path / "m.sqlite3"))
    assert embedded.epoch("ns") == again.epoch("ns")  # one file, one history
    embedded.close()
    again.close()
