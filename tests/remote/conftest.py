"""Fixtures of the remote backend's tests: a REAL OpenAI-compatible server (llama-cpp-python's,
``python -m llama_cpp.server``) serving the tiny test model on a free loopback port, and the
settings that point the remote backend at it.

Servers a test kills or restarts are its own (``start_server``); the session's one
(``openai_server``) is only read from.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from gemma_lsp.config import OpenAIModelSettings
from gemma_lsp.engine.remote_tokenizer import GgufTokenizer
from gemma_lsp.engine.testserver import OpenAIServer

from misbehaving import Misbehaving


def server_extra_installed() -> None:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("sse_starlette") is None:
        reason = "llama-cpp-python's [server] extra is not installed (`make install-dev` installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def openai_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """One server for every test that only sends it requests."""
    server_extra_installed()
    server = OpenAIServer(tiny_model, log_path=tmp_path_factory.mktemp("openai") / "server.log", n_threads=1)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_server(tiny_model: Path, tmp_path: Path):
    """Start a server of one's own (killed at the end of the test): ``start_server(**options)``."""
    server_extra_installed()
    started: list[OpenAIServer] = []

    def start(model: Path | None = None, **options) -> OpenAIServer:
        options.setdefault("n_threads", 1)
        server = OpenAIServer(model or tiny_model, log_path=tmp_path / f"server-{len(started)}.log", **options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


def remote_settings(*urls: str, **options) -> OpenAIModelSettings:
    """Settings of the remote backend on ``urls``: quick health checks and timeouts for tests."""
    options.setdefault("idle_unload_seconds", 0)
    options.setdefault("n_ctx", 4096)
    options.setdefault("health_interval_s", 0.2)
    options.setdefault("connect_timeout_s", 1.0)
    options.setdefault("timeout_s", 10.0)
    return OpenAIModelSettings(base_url=urls[0], base_urls=list(urls[1:]), **options)


@pytest.fixture(scope="session")
def vocab(tiny_model: Path):
    """The tiny model's own tokenizer (to name token ids for logit biases)."""
    tokenizer = GgufTokenizer(tiny_model, 4096)
    yield tokenizer
    tokenizer.close()


@pytest.fixture
def misbehaving():
    """A small stdlib HTTP server that answers like a broken inference server, on purpose."""
    server = Misbehaving().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (``cert.pem``, its key in ``cert.key``), made with openssl."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: openssl is not installed")
        pytest.skip("openssl is not installed (apt-get install openssl)")
    d = tmp_path_factory.mktemp("remote-tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "cert.key"), "-out",
         str(d / "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem"
