"""The servers a remote backend may send a request to: their health, load and latency.

Each endpoint is an OpenAI API root (``http://gpu-box:8080/v1``) of a server that serves the
same model. :class:`EndpointPool` picks one per request:

- a document's requests (their ``key``) stay on the endpoint that served them while it is up,
  so the server's prompt cache for that document stays warm;
- other requests go to the up endpoint with the fewest requests in flight from this client,
  then the lowest latency (time to the first byte, averaged);
- an endpoint that fails a request is marked down at once and the request moves on to the
  next one; a down endpoint gets no requests until a health check finds it up again.

Health checks run in the background (:func:`watch`, on the remote backend's event loop). An
endpoint with a request in flight is not checked: the request says how it is doing.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_STICKY_KEYS = 1024  # documents remembered per pool
_LATENCY_WEIGHT = 0.2  # of a new measurement in the running average


def api_root(url: str) -> str:
    """The server's root for its own routes (``/health``, ``/tokenize``): the URL without ``/v1``."""
    return url[: -len("/v1")] if url.endswith("/v1") else url


def probe(url: str, timeout: float = 3.0) -> str | None:
    """None when ``GET url/models`` gets an HTTP answer, else why not (``gemma-lsp doctor``)."""
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/models", timeout=timeout, follow_redirects=False, trust_env=False)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None


@dataclass(eq=False)
class Endpoint:
    url: str
    index: int
    state: str = "unknown"  # "up" | "down" | "unknown" (not reached yet)
    last_error: str | None = None
    changed_at: float = field(default_factory=time.time)
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    health_ms: float | None = None  # the last health check's round trip
    latency_ms: float | None = None  # time to the first byte of an answer, averaged
    checked_at: float | None = None

    @property
    def root(self) -> str:
        return api_root(self.url)

    @property
    def usable(self) -> bool:
        return self.state != "down"

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": self.state,
            "in_flight": self.in_flight,
            "requests": self.requests,
            "failures": self.failures,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "health_ms": None if self.health_ms is None else round(self.health_ms, 3),
            "last_error": self.last_error,
            "since": round(self.changed_at, 3),
        }


class EndpointPool:
    """Every endpoint's state; thread-safe (the engine's worker and the event loop share it)."""

    def __init__(self, urls: list[str], on_up: Callable[[Endpoint], None] | None = None) -> None:
        self.endpoints = [Endpoint(url, i) for i, url in enumerate(urls)]
        self._lock = threading.Lock()
        self._sticky: collections.OrderedDict[str, Endpoint] = collections.OrderedDict()
        self._on_up = on_up

    def acquire(self, key: str | None, exclude: set[Endpoint] | frozenset = frozenset()) -> Endpoint | None:
        """The endpoint for a request (counted in flight until :meth:`release`); None when none is usable."""
        with self._lock:
            candidates = [e for e in self.endpoints if e.usable and e not in exclude]
            if not candidates:
                return None
            chosen = self._sticky.get(key) if key is not None else None
            if chosen not in candidates:
                chosen = min(
                    candidates,
                    key=lambda e: (e.in_flight, e.state != "up", e.latency_ms or 0.0, e.index),
                )
            if key is not None:
                self._sticky[key] = chosen
                self._sticky.move_to_end(key)
                while len(self._sticky) > _STICKY_KEYS:
                    self._sticky.popitem(last=False)
            chosen.in_flight += 1
            chosen.requests += 1
            return chosen

    def release(self, endpoint: Endpoint, first_byte_ms: float | None = None) -> None:
        with self._lock:
            endpoint.in_flight -= 1
            if first_byte_ms is not None:
                old = endpoint.latency_ms
                endpoint.latency_ms = first_byte_ms if old is None else old + _LATENCY_WEIGHT * (first_byte_ms - old)

    def mark_up(self, endpoint: Endpoint, health_ms: float | None = None) -> None:
        with self._lock:
            was = endpoint.state
            endpoint.checked_at = time.time()
            if health_ms is not None:
                endpoint.health_ms = health_ms
            if was == "up":
                return
            endpoint.state, endpoint.last_error, endpoint.changed_at = "up", None, time.time()
        if was == "down":
            log.warning("the inference server at %s answers again", endpoint.url)
        if self._on_up is not None:
            self._on_up(endpoint)

    def mark_down(self, endpoint: Endpoint, reason: str, failed_request: bool = False) -> None:
        with self._lock:
            endpoint.checked_at = time.time()
            if failed_request:
                endpoint.failures += 1
            changed = endpoint.state != "down" or endpoint.last_error != reason
            if endpoint.state != "down":
                endpoint.changed_at = time.time()
            endpoint.state, endpoint.last_error = "down", reason
        if changed:
            log.warning("the inference server at %s is down: %s", endpoint.url, reason)

    def any_up(self) -> bool:
        with self._lock:
            return any(e.state == "up" for e in self.endpoints)

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e.as_dict() for e in self.endpoints]

    def down_message(self) -> str:
        """One sentence: why no endpoint can take a request."""
        with self._lock:
            parts = [f"{e.url} {e.last_error or 'is down'}" for e in self.endpoints]
        many = len(parts) > 1
        return (
            f"No inference server answers ({'; '.join(parts)}); "
            f"completions resume by themselves when {'one is' if many else 'it is'} back."
        )


Check = Callable[[Endpoint], Awaitable[str | None]]  # None: up; else why it is down


async def watch(pool: EndpointPool, check: Check, interval_s: float, stop: asyncio.Event) -> None:
    """Check every endpoint now, then every ``interval_s`` (a down one every second at most),
    until ``stop`` is set. An endpoint with a request in flight is left alone."""

    async def one(endpoint: Endpoint) -> None:
        while not stop.is_set():
            if endpoint.in_flight == 0 or endpoint.state == "unknown":
                started = time.perf_counter()
                try:
                    problem = await check(endpoint)
                except Exception as exc:  # noqa: BLE001 - a check never ends the watch
                    problem = f"failed its health check ({type(exc).__name__}: {exc})"
                if problem is None:
                    pool.mark_up(endpoint, (time.perf_counter() - started) * 1000)
                else:
                    pool.mark_down(endpoint, problem)
            wait = interval_s if endpoint.state == "up" else min(interval_s, 1.0)
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except asyncio.TimeoutError:
                pass

    await asyncio.gather(*(one(e) for e in pool.endpoints))
