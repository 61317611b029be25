"""Embeddings of memories from the remote backend's servers (``/v1/embeddings``).

With ``backend = "openai"`` and ``model.embedding_model`` set (and no local
``memory.embedding_model``), dense retrieval of memories uses the servers' embedding model:
:class:`RemoteEmbedder` satisfies ``gemma_lsp.memory.search.Embedder``. The memory thread is
its only caller, so it speaks plain synchronous HTTP (httpx, keep-alive), trying the
configured servers in order until one answers.
"""

from __future__ import annotations

import logging

import httpx
import numpy as np

from gemma_lsp.config import OpenAIModelSettings
from gemma_lsp.errors import ModelUnavailable

from .remote import describe_exception, server_message, read_api_key, tls_verify

log = logging.getLogger(__name__)

BATCH = 64  # texts per request


class RemoteEmbedder:
    """``embed(texts)`` through ``/v1/embeddings`` of the first server that answers."""

    def __init__(self, settings: OpenAIModelSettings) -> None:
        if not settings.embedding_model:
            raise ModelUnavailable("model.embedding_model is not set: there is no remote embedding model to use.")
        self.settings = settings
        self.model = settings.embedding_model
        key = read_api_key(settings)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            verify=tls_verify(settings), trust_env=False, follow_redirects=False,
        )
        self._preferred = 0  # the server that answered last: asked first next time

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text, shape ``(len(texts), dim)``; :class:`ModelUnavailable` when no server embeds."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        parts = [self._batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        return np.concatenate(parts, axis=0)

    def _batch(self, texts: list[str]) -> np.ndarray:
        urls = self.settings.urls
        order = [*range(self._preferred, len(urls)), *range(self._preferred)]
        problems = []
        for index in order:
            url = urls[index]
            try:
                response = self._client.post(
                    url + "/embeddings", json={"model": self.model, "input": texts}, headers=self._headers
                )
            except httpx.HTTPError as exc:
                problems.append(f"{url} {describe_exception(exc, self.settings, answered=False)}")
                continue
            if response.status_code != 200:
                detail = server_message(response.text)
                problems.append(f"{url} answered HTTP {response.status_code}" + (f" ({detail})" if detail else ""))
                continue
            try:
                data = sorted(response.json()["data"], key=lambda d: d.get("index", 0))
                vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
            except (ValueError, KeyError, TypeError):
                problems.append(f"{url} sent embeddings that are not an OpenAI embeddings answer")
                continue
            if vectors.ndim != 2 or len(vectors) != len(texts):
                problems.append(f"{url} sent {len(vectors)} embeddings for {len(texts)} texts")
                continue
            self._preferred = index
            return vectors
        raise ModelUnavailable(f"No server embeds with {self.model!r}: {'; '.join(problems)}.")

    def close(self) -> None:
        self._client.close()
