"""Dense retrieval through the servers' ``/v1/embeddings`` (``model.embedding_model``), against a
real server embedding with the EmbeddingGemma-shaped test model, next to the in-process embedder."""

from __future__ import annotations

import numpy as np
import pytest

from gemma_lsp.app import Services
from gemma_lsp.config import Settings
from gemma_lsp.engine.embedder import GgufEmbedder
from gemma_lsp.engine.remote_embedder import RemoteEmbedder
from gemma_lsp.engine.testserver import free_port
from gemma_lsp.errors import ModelUnavailable

from remote_support import remote_settings

TEXTS = ["def add(a, b):\n    return a + b", "class Point:\n    x: float", "SELECT name FROM users"]


@pytest.fixture(scope="module")
def embedding_model(model_factory):
    return model_factory("gemma-embedding", "embedding")


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_remote_embeddings_match_the_in_process_ones(start_server, embedding_model):
    server = start_server(model=embedding_model, embedding=True)
    down = f"http://127.0.0.1:{free_port()}/v1"
    remote = RemoteEmbedder(remote_settings(down, server.url, embedding_model="embedder"))
    local = GgufEmbedder(embedding_model, n_threads=1)
    try:
        vectors = remote.embed(TEXTS)  # the first server is down: the second answers
        assert vectors.shape == (3, local.dim)
        assert cosine(vectors, local.embed(TEXTS)).min() > 0.99
        assert cosine(vectors[:1], vectors[1:2])[0] < 0.99  # different texts, different vectors
    finally:
        remote.close()
        local.close()


def test_without_a_server_the_embedder_names_each_problem():
    url = f"http://127.0.0.1:{free_port()}/v1"
    embedder = RemoteEmbedder(remote_settings(url, embedding_model="embedder"))
    try:
        with pytest.raises(ModelUnavailable) as info:
            embedder.embed(["x"])
        assert str(info.value) == f"No server embeds with 'embedder': {url} refused the connection."
    finally:
        embedder.close()


async def test_the_services_embed_memories_remotely_when_the_model_settings_say_so(tmp_path):
    settings = Settings(
        model=remote_settings("http://127.0.0.1:9/v1", embedding_model="embedder"),
        memory={"sqlite_path": str(tmp_path / "memories.db")},
    )
    services = Services.from_settings(settings, tmp_path)
    try:
        assert isinstance(services.memory.index.embedder, RemoteEmbedder)
        changed = Settings(model=remote_settings("http://127.0.0.1:9/v1"), memory=settings.memory)
        applied = await services.apply(changed)
        assert applied.memory and services.memory.index.embedder is None
    finally:
        await services.close()
