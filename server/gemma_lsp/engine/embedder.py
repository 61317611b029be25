"""An embedder for memories: a GGUF embedding model (EmbeddingGemma, or any Gemma GGUF) in-process.

It satisfies ``gemma_lsp.memory.search.Embedder`` without memory/ importing the engine: the
server hands it over. The model loads on first use, in its own llama.cpp context with mean
pooling, separate from the completion model; the memory thread is its only caller.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from gemma_lsp.errors import ModelUnavailable

from .llamacpp import open_llama, read_architecture

EMBEDDING_ARCHES = ("gemma-embedding", "gemma", "gemma2", "gemma3")


class GgufEmbedder:
    def __init__(self, path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.path = Path(path).expanduser()
        arch = read_architecture(self.path)
        if arch not in EMBEDDING_ARCHES:
            raise ModelUnavailable(
                f"Embedding model {self.path} is a {arch!r} model; use a Gemma-family GGUF such as EmbeddingGemma."
            )
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self._llm = None
        self._lock = threading.Lock()

    def _model(self):
        if self._llm is None:
            import llama_cpp

            self._llm = open_llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, n_threads_batch=self.n_threads,
                embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            )
        return self._llm

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text (long texts are cut to the context size)."""
        with self._lock:
            llm = self._model()
            vectors = llm.embed([t if t.strip() else " " for t in texts], truncate=True)
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
