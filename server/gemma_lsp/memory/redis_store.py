"""``RedisMemoryStore``: memories in Redis (redis-py, hiredis parser when installed).

Key layout (``P`` = ``settings.prefix``, ``N`` = the namespace; ``{N}`` is a Redis Cluster hash
tag, so all of one namespace's keys live in one slot and its transactions and scripts work on a
cluster too):

- ``P:{N}:m:<id>``          hash: one memory (fields below); Redis expiry = its tier's TTL
- ``P:{N}:t:<tier>``        sorted set: ids of the tier's memories, score = created_at (an index;
                            members whose hash expired are dropped lazily by ``query``/``purge_expired``)
- ``P:{N}:changes``         stream: the change feed (``op``, ``id``, ``origin``, ``at``), capped
                            at ~``change_feed_max_len`` entries
- ``P:{N}:op:<op_id>:<id>`` string: marks a ``touch`` with that ``op_id`` as applied (7 days)
- ``P:{N}:epoch``           string: a random id set once (``SET NX``); gone when Redis lost its data

Memory hash fields: ``id namespace tier kind text tags`` (JSON list) ``importance created_at
last_accessed access_count content_hash`` and, when set, ``source`` (JSON) and ``embedding``
(little-endian float32 bytes).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import MemoryUnavailable
from .model import Change, Kind, Memory, Tier, matches
from .settings import MemorySettings
from .store import dump_source, new_origin, pack_embedding, sort_newest_first, unpack_embedding

OP_MARKER_SECONDS = 7 * 86400

# Count one access of KEYS[1] unless KEYS[2] (the op marker) says this op was applied already.
_TOUCH_LUA = """
if ARGV[2] == '1' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 0 end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'access_count', 1)
local last = tonumber(redis.call('HGET', KEYS[1], 'last_accessed') or '0')
if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[1], 'last_accessed', ARGV[1]) end
return 1
"""

_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
try:  # cluster-only failures
    _UNAVAILABLE += (redis.exceptions.ClusterDownError, redis.exceptions.ClusterError)
except AttributeError:  # pragma: no cover
    pass


def _guard(method):
    """Turn "Redis is not there" errors into ``MemoryUnavailable`` (the resilient wrapper's signal)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
            # A configuration problem, but the server still serves without memories (and says so once).
            raise MemoryUnavailable(f"Redis at {self.display_url} refused the credentials: {exc}") from exc
        except _UNAVAILABLE as exc:
            raise MemoryUnavailable(f"Redis at {self.display_url} is unavailable: {exc}") from exc
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith(("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")):
                raise MemoryUnavailable(f"Redis at {self.display_url} is not ready: {exc}") from exc
            raise

    return wrapper


def parse_redis_url(url: str) -> tuple[str, bool]:
    """``(url for redis-py, is_cluster)``: ``redis+cluster://``, ``rediss+cluster://`` or ``?cluster=true``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    cluster = False
    if scheme.endswith("+cluster"):
        cluster, scheme = True, scheme[: -len("+cluster")]
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == "cluster":
            cluster = cluster or value.lower() in {"1", "true", "yes", "on"}
        else:
            query.append((key, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment)), cluster


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


def ping(settings: MemorySettings) -> None:
    """PING ``settings.url`` once (``gemma-lsp doctor``); raises redis-py's error when it does not answer."""
    client = connect(settings.url, settings)
    try:
        client.ping()
    finally:
        client.close()


def connect(url: str, settings: MemorySettings):
    """A redis-py client for ``url``: ``redis.Redis`` or, for a cluster URL, ``redis.cluster.RedisCluster``."""
    plain, cluster = parse_redis_url(url)
    common = dict(
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=settings.socket_timeout,
        decode_responses=False,
    )
    if cluster:  # untested here: no cluster to run against (see docs/memory.md)
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(plain, **common)
    # One quick retry: it reconnects a pooled connection that a Redis restart closed.
    return redis.Redis.from_url(plain, retry=Retry(NoBackoff(), 1), **common)


class RedisMemoryStore:
    """A ``MemoryStore`` on Redis. ``settings.url`` must be set (or pass ``client``)."""

    def __init__(self, settings: MemorySettings, *, client=None) -> None:
        if client is None and not settings.url:
            raise ValueError("RedisMemoryStore needs settings.url")
        self.settings = settings
        self.display_url = redact_url(settings.url or "redis://(client)")
        self.cluster = bool(settings.url) and parse_redis_url(settings.url)[1]
        self.client = client if client is not None else connect(settings.url, settings)
        self.origin = new_origin()
        self._touch = self.client.register_script(_TOUCH_LUA)

    def _node(self, namespace: str):
        """The client for one namespace's keys. They share a hash tag, so in a cluster they live on
        one node: talk to that node directly, where transactions and scripts work in pipelines
        (redis-py's cluster pipeline refuses EVALSHA)."""
        if not self.cluster:
            return self.client
        return self.client.get_redis_connection(self.client.get_node_from_key(self._base(namespace)))

    # -- keys ---------------------------------------------------------------------------

    def _base(self, namespace: str) -> str:
        return f"{self.settings.prefix}:{{{namespace}}}"

    def memory_key(self, namespace: str, id: str) -> str:
        return f"{self._base(namespace)}:m:{id}"

    def tier_key(self, namespace: str, tier: Tier | str) -> str:
        return f"{self._base(namespace)}:t:{Tier(tier).value}"

    def changes_key(self, namespace: str) -> str:
        return f"{self._base(namespace)}:changes"

    def op_key(self, namespace: str, op_id: str, id: str) -> str:
        return f"{self._base(namespace)}:op:{op_id}:{id}"

    def epoch_key(self, namespace: str) -> str:
        return f"{self._base(namespace)}:epoch"

    @_guard
    def epoch(self, namespace: str) -> str:
        """The namespace's epoch: set once; a Redis that lost its data (restarted without RDB/AOF,
        flushed) no longer has it and gets a new one, so derived indexes know to rebuild."""
        node, key = self._node(namespace), self.epoch_key(namespace)
        value = node.get(key)
        if value is None:
            node.set(key, uuid.uuid4().hex, nx=True)
            value = node.get(key)
        return value.decode() if isinstance(value, bytes) else str(value)

    # -- writes -------------------------------------------------------------------------

    def put(self, memory: Memory) -> str:
        return self.put_many([memory])[0]

    @_guard
    def put_many(self, memories: Iterable[Memory]) -> list[str]:
        items = list(memories)
        if not items:
            return []
        now = time.time()
        for group in self._groups(items, key=lambda m: m.namespace):
            pipe = self._node(group[0].namespace).pipeline(transaction=True)
            for m in group:
                self._queue_put(pipe, m, now)
            pipe.execute()
        return [m.id for m in items]

    def _queue_put(self, pipe, m: Memory, now: float) -> None:
        key = self.memory_key(m.namespace, m.id)
        fields: dict[str, object] = {
            "id": m.id,
            "namespace": m.namespace,
            "tier": m.tier.value,
            "kind": m.kind.value,
            "text": m.text,
            "tags": json.dumps(list(m.tags)),
            "importance": repr(m.importance),
            "content_hash": m.content_hash,
        }
        if m.source is not None:
            fields["source"] = dump_source(m)
        if m.embedding is not None:
            fields["embedding"] = pack_embedding(m.embedding)
        pipe.hset(key, mapping=fields)
        pipe.hsetnx(key, "created_at", repr(m.created_at))
        pipe.hsetnx(key, "last_accessed", repr(m.last_accessed))
        pipe.hsetnx(key, "access_count", m.access_count)
        ttl = self.settings.ttl.for_tier(m.tier)
        if ttl is None:
            pipe.persist(key)
        else:
            pipe.pexpire(key, max(1, int(ttl * 1000)))
        for tier in Tier:
            if tier is not m.tier:
                pipe.zrem(self.tier_key(m.namespace, tier), m.id)
        pipe.zadd(self.tier_key(m.namespace, m.tier), {m.id: m.created_at}, nx=True)
        self._queue_change(pipe, m.namespace, "put", m.id, now)

    def _queue_change(self, pipe, namespace: str, op: str, id: str, now: float) -> None:
        pipe.xadd(
            self.changes_key(namespace),
            {"op": op, "id": id, "origin": self.origin, "at": repr(now)},
            maxlen=self.settings.change_feed_max_len,
            approximate=True,
        )

    @_guard
    def delete(self, namespace: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        now = time.time()
        pipe = self._node(namespace).pipeline(transaction=True)
        for id_ in ids:
            pipe.delete(self.memory_key(namespace, id_))
            for tier in Tier:
                pipe.zrem(self.tier_key(namespace, tier), id_)
            self._queue_change(pipe, namespace, "delete", id_, now)
        pipe.execute()

    @_guard
    def touch(self, namespace: str, ids: Iterable[str], *, at: float | None = None, op_id: str | None = None) -> None:
        ids = list(ids)
        if not ids:
            return
        at = time.time() if at is None else at
        pipe = self._node(namespace).pipeline(transaction=False)
        for id_ in ids:
            key = self.memory_key(namespace, id_)
            marker = self.op_key(namespace, op_id, id_) if op_id else key
            self._touch(keys=[key, marker], args=[repr(at), "1" if op_id else "0", OP_MARKER_SECONDS], client=pipe)
        pipe.execute()

    # -- reads --------------------------------------------------------------------------

    def get(self, namespace: str, id: str) -> Memory | None:
        found = self.get_many(namespace, [id])
        return found[0] if found else None

    @_guard
    def get_many(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        if not ids:
            return []
        pipe = self._node(namespace).pipeline(transaction=False)
        for id_ in ids:
            pipe.hgetall(self.memory_key(namespace, id_))
        return [_hash_to_memory(h) for h in pipe.execute() if h and b"text" in h]

    @_guard
    def query(
        self,
        namespace: str,
        *,
        tiers: Iterable[Tier | str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        tags: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Memory]:
        tier_list = list(Tier) if tiers is None else [Tier(t) for t in tiers]
        kinds = None if kinds is None else [Kind(k) for k in kinds]
        tags = None if tags is None else list(tags)
        ids, gone = self._live_ids(namespace, tier_list)
        pipe = self._node(namespace).pipeline(transaction=False)
        for id_ in ids:
            pipe.hgetall(self.memory_key(namespace, id_))
        found = []
        for (id_, tier), h in zip(ids.items(), pipe.execute()):
            if h and b"text" in h:
                found.append(_hash_to_memory(h))
            else:
                gone.append((tier, id_))
        self._drop_index_entries(namespace, gone)
        found = [m for m in found if matches(m, kinds=kinds, tags=tags)]
        return sort_newest_first(found, limit)

    def _live_ids(self, namespace: str, tiers: list[Tier]) -> tuple[dict[str, Tier], list]:
        pipe = self._node(namespace).pipeline(transaction=False)
        for tier in tiers:
            pipe.zrange(self.tier_key(namespace, tier), 0, -1)
        ids: dict[str, Tier] = {}
        for tier, members in zip(tiers, pipe.execute()):
            for raw in members:
                ids.setdefault(raw.decode(), tier)
        return ids, []

    def _drop_index_entries(self, namespace: str, gone: list[tuple[Tier, str]]) -> None:
        if not gone:
            return
        pipe = self._node(namespace).pipeline(transaction=False)
        for tier, id_ in gone:
            pipe.zrem(self.tier_key(namespace, tier), id_)
        pipe.execute()

    @_guard
    def changes(self, namespace: str, since: str | None = None, limit: int = 1000) -> list[Change]:
        start = f"({since}" if since else "-"
        entries = self.client.xrange(self.changes_key(namespace), min=start, max="+", count=limit)
        out = []
        for entry_id, fields in entries:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            out.append(
                Change(cursor=entry_id.decode(), namespace=namespace, op=f["op"], id=f["id"], origin=f["origin"],
                       at=float(f["at"]))
            )  # fmt: skip
        return out

    # -- upkeep -------------------------------------------------------------------------

    @_guard
    def purge_expired(self, namespace: str) -> int:
        ids, _ = self._live_ids(namespace, list(Tier))
        pipe = self._node(namespace).pipeline(transaction=False)
        for id_ in ids:
            pipe.exists(self.memory_key(namespace, id_))
        gone = [(tier, id_) for (id_, tier), alive in zip(ids.items(), pipe.execute()) if not alive]
        self._drop_index_entries(namespace, gone)
        return len(gone)

    @_guard
    def ping(self) -> bool:
        return bool(self.client.ping())

    def close(self) -> None:
        self.client.close()

    def _groups(self, items: list[Memory], key):
        if not self.cluster:
            return [items]  # one MULTI for the whole batch
        groups: dict[str, list[Memory]] = {}
        for m in items:
            groups.setdefault(key(m), []).append(m)
        return list(groups.values())  # on a cluster: one transaction per namespace (one slot each)


def _hash_to_memory(h: dict[bytes, bytes]) -> Memory:
    s = {k.decode(): v for k, v in h.items()}
    text = lambda name: s[name].decode()  # noqa: E731
    return Memory(
        id=text("id"), namespace=text("namespace"), tier=text("tier"), kind=text("kind"), text=text("text"),
        source=json.loads(s["source"]) if s.get("source") else None, tags=json.loads(s["tags"]),
        importance=float(s["importance"]), created_at=float(s["created_at"]),
        last_accessed=float(s["last_accessed"]), access_count=int(s["access_count"]),
        content_hash=text("content_hash"), embedding=unpack_embedding(s.get("embedding")),
    )  # fmt: skip
