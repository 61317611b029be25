"""Fixtures for the memory tests: a real redis-server on a free loopback port, and both stores.

The store contract suite runs once per store through the parametrized ``store_kind`` fixture.
Without a ``redis-server`` binary the Redis cases are skipped with a reason, except under
``CI=true``, where that is a failure (``make test`` installs redis-server).
"""

from __future__ import annotations

import time
import subprocess
import uuid
from pathlib import Path

import pytest
import redis
import redis.cluster

from gemma_lsp.memory.redis_server import RedisServer, free_cluster_port, free_port
from system_tools import required_tool

from gemma_lsp.memory import EmbeddedMemoryStore, MemorySettings, RedisMemoryStore, TierTTLs


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return required_tool("redis-server", "apt-get install redis-server; `make test` does it")


@pytest.fixture(scope="session")
def redis_server(redis_binary: str, tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(redis_binary, free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def spawn_redis(redis_binary: str, tmp_path: Path):
    """``spawn_redis(*args, port=None, tls_cert=None)``: a started RedisServer (not a module import: use this
    fixture, so tests never ``import conftest``); every one is stopped after the test."""
    servers: list[RedisServer] = []

    def spawn(*extra: str, port: int | None = None, tls_cert: Path | None = None) -> RedisServer:
        workdir = tmp_path / f"redis-{len(servers)}"
        server = RedisServer(redis_binary, port or free_port(), workdir, *extra, tls_cert=tls_cert)
        servers.append(server)
        return server.start()

    yield spawn
    for server in servers:
        server.stop()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (right now)."""
    return free_port()


@pytest.fixture
def namespace() -> str:
    return f"ws-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_cluster(redis_binary: str, tmp_path_factory: pytest.TempPathFactory):
    """A real three-node Redis Cluster on loopback ports (no replicas), made with redis-cli."""
    cli = required_tool("redis-cli", "apt-get install redis-server; `make test` does it")
    workdir = tmp_path_factory.mktemp("redis-cluster")
    nodes = [
        RedisServer(redis_binary, free_cluster_port(), workdir / f"node{i}", "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{i}.conf").start()
        for i in range(3)
    ]  # fmt: skip
    try:
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes), "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        probe = redis.cluster.RedisCluster(host="127.0.0.1", port=nodes[0].port)
        deadline = time.monotonic() + 20
        while probe.cluster_info().get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready")
            time.sleep(0.1)
        probe.close()
        yield f"redis+cluster://127.0.0.1:{nodes[0].port}/0"
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(params=["embedded", "redis", "redis-cluster"])
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def make_store(store_kind: str, request, tmp_path: Path):
    """``make_store(**ttl)`` opens a store of the parametrized kind; every store it made is closed after."""
    made = []
    prefix = f"t{uuid.uuid4().hex[:10]}"
    sqlite_path = tmp_path / "memories.sqlite3"

    def make(**ttl: float | None):
        settings = MemorySettings(prefix=prefix, sqlite_path=sqlite_path, ttl=TierTTLs(**ttl))
        if store_kind == "embedded":
            store = EmbeddedMemoryStore(settings)
        elif store_kind == "redis-cluster":
            url = request.getfixturevalue("redis_cluster")
            store = RedisMemoryStore(settings.model_copy(update={"url": url}))
        else:
            server = request.getfixturevalue("redis_server")
            store = RedisMemoryStore(settings.model_copy(update={"url": server.url}))
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()
