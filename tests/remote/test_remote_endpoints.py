"""Several servers of one model: health checks, least-loaded choice, a document sticking to its
server, failover when one dies, and the per-server status ``gemma/stats`` reports.

Two real servers (llama-cpp-python's, on the tiny model) are started and killed here.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gemma_lsp.config.sampling import GreedySpec, LogitBiasSpec
from gemma_lsp.engine import (
    ChatMessage,
    ChatPrompt,
    EngineManager,
    GenerationLimits,
    GenerationRequest,
    SamplingSpec,
    TextPrompt,
)
from gemma_lsp.engine.endpoints import EndpointPool
from gemma_lsp.engine.testserver import free_port
from gemma_lsp.errors import ModelUnavailable

from remote_support import remote_settings

PROMPT = TextPrompt("x = ")


def request(key: str | None = None, max_tokens: int = 2) -> GenerationRequest:
    return GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=max_tokens), key=key)


def served_by(manager: EngineManager) -> str:
    return manager.status()["last_request"]["endpoint"]


def states(manager: EngineManager) -> list[str]:
    return [e["state"] for e in manager.status()["endpoints"]]


async def wait_for(condition, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def two(start_server):
    a, b = start_server(), start_server()
    manager = EngineManager(remote_settings(a.url, b.url))
    await manager.load()
    yield manager, a, b
    await manager.close()


async def test_both_servers_are_checked_and_reported(two):
    manager, a, b = two
    status = manager.status()
    assert [e["url"] for e in status["endpoints"]] == [a.url, b.url]
    assert states(manager) == ["up", "up"]
    assert all(e["health_ms"] is not None and e["last_error"] is None for e in status["endpoints"])
    assert status["backend"] == "openai" and status["server"] == "llama-cpp-python" and status["prompts"] == "fim"


async def test_a_documents_requests_stay_on_one_server(two):
    manager, a, b = two
    await manager.generate(request("file:///one.py"))
    first = served_by(manager)
    for _ in range(4):
        await manager.generate(request("file:///other.py"))
        await manager.generate(request("file:///one.py"))
        assert served_by(manager) == first


async def test_a_new_request_goes_to_the_server_with_nothing_in_flight(two, vocab):
    manager, a, b = two
    x = vocab.tokenize("x")[0]
    chat_going = asyncio.Event()
    chat = GenerationRequest(
        ChatPrompt((ChatMessage("user", "go"),)),
        SamplingSpec((LogitBiasSpec(bias={x: 100.0}), GreedySpec())),
        GenerationLimits(max_tokens=150), lane="chat", key="chat",
    )

    async def run_chat():
        async for item in manager.stream(chat):
            chat_going.set()

    task = asyncio.ensure_future(run_chat())
    await asyncio.wait_for(chat_going.wait(), 30)
    chat_endpoint = next(e["url"] for e in manager.status()["endpoints"] if e["in_flight"])
    await manager.generate(request("file:///new.py"))  # served between two chat pieces
    assert served_by(manager) != chat_endpoint
    await task
    assert manager.stats.interleaved == 1


async def test_when_a_server_dies_its_documents_move_to_the_other_without_an_error(two):
    manager, a, b = two
    await manager.generate(request("file:///doc.py"))
    sticky = served_by(manager)
    dead, alive = (a, b) if sticky == a.url else (b, a)
    dead.kill()
    result = await manager.generate(request("file:///doc.py"))  # no error: failover
    assert served_by(manager) == alive.url and result.stop_reason in ("max_tokens", "stop_token")
    endpoints = {e["url"]: e for e in manager.status()["endpoints"]}
    assert endpoints[dead.url]["state"] == "down" and endpoints[dead.url]["last_error"] == "refused the connection"
    assert endpoints[dead.url]["failures"] == 1
    dead.start()
    await wait_for(lambda: states(manager) == ["up", "up"])
    await manager.generate(request("file:///doc.py"))
    assert served_by(manager) == alive.url  # it stays where its cache is warm


async def test_with_every_server_down_requests_fail_at_once_naming_each(two):
    manager, a, b = two
    a.kill()
    b.kill()
    await wait_for(lambda: states(manager) == ["down", "down"])
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as info:
        await manager.generate(request("file:///doc.py"))
    assert time.perf_counter() - started < 0.2
    assert str(info.value) == (
        f"No inference server answers ({a.url} refused the connection; {b.url} refused the connection); "
        "completions resume by themselves when one is back."
    )
    b.start()
    await wait_for(lambda: states(manager) == ["down", "up"])
    await manager.generate(request("file:///doc.py"))
    assert served_by(manager) == b.url


def test_the_pool_prefers_fewer_requests_in_flight_then_lower_latency():
    pool = EndpointPool(["http://a/v1", "http://b/v1", "http://c/v1"])
    a, b, c = pool.endpoints
    for e, ms in ((a, 30.0), (b, 10.0), (c, 20.0)):
        pool.mark_up(e)
        pool.release(pool.acquire(None, {x for x in pool.endpoints if x is not e}), ms)
    assert pool.acquire(None) is b  # the fastest, nothing in flight anywhere
    assert pool.acquire(None) is c  # b is busy now
    assert pool.acquire(None) is a
    pool.mark_down(b, "refused the connection")
    held = pool.acquire("doc")
    assert held in (a, c) and pool.acquire("doc") is held  # sticky while it is up
    pool.mark_down(held, "refused the connection")
    assert pool.acquire("doc") not in (held, b)
    pool.mark_down(a, "x")
    pool.mark_down(c, "y")
    assert pool.acquire("doc") is None


def test_a_free_port_nobody_listens_on_is_reported_down_by_the_pool_message():
    pool = EndpointPool([f"http://127.0.0.1:{free_port()}/v1"])
    pool.mark_down(pool.endpoints[0], "refused the connection")
    assert pool.down_message().endswith("refused the connection); completions resume by themselves when it is back.")
