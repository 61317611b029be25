"""Fixtures of the remote backend's tests: a REAL OpenAI-compatible server (llama-cpp-python's,
``python -m llama_cpp.server``) serving the tiny test model on a free loopback port, and the
settings that point the remote backend at it.

Servers a test kills or restarts are its own (``start_server``); the session's one
(``openai_server``) is only read from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gemma_lsp.engine.remote_tokenizer import GgufTokenizer
from gemma_lsp.engine.testserver import OpenAIServer

from misbehaving import Misbehaving
from remote_support import server_extra_installed


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
