"""A real redis-server child process for the tests and ``gemma-lsp bench rag``: started on a free
loopback port, without persistence, killed or stopped on demand."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_cluster_port() -> int:
    """A free port P whose cluster bus port P + 10000 is free too (and below 65536)."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 50000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One real redis-server process; ``version`` is what it reports once it answers."""

    def __init__(self, binary: str, port: int, workdir: Path, *extra: str, tls_cert: Path | None = None) -> None:
        """``tls_cert``: serve TLS only (a PEM holding the certificate; its key beside it as ``*.key``)."""
        self.binary, self.port, self.workdir, self.extra, self.tls_cert = binary, port, workdir, extra, tls_cert
        self.proc: subprocess.Popen | None = None
        self.version: str | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        ports = ["--port", str(self.port)]
        tls: dict = {}
        if self.tls_cert is not None:
            key = self.tls_cert.with_suffix(".key")
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls_cert),
                     "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.tls_cert), "--tls-auth-clients", "no"]  # fmt: skip
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls_cert)}
        args = [self.binary, *ports, "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", *self.extra]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.2, password=self._password(), **tls
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.version = str(client.info("server").get("redis_version"))
                break
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.proc.stderr.read().decode()}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer within 10 s")
                time.sleep(0.02)
            finally:
                client.close()
        return self

    def _password(self) -> str | None:
        if "--requirepass" in self.extra:
            return self.extra[self.extra.index("--requirepass") + 1]
        return None

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-session, as a crash would do."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
