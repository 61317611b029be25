"""Embeddings in-process from GGUF models: EmbeddingGemma (``gemma-embedding``) or any Gemma GGUF.

:class:`GgufEmbedder` satisfies ``gemma_lsp.memory.search.Embedder`` without memory/ importing
the engine: the server hands it over. The model loads on first use, in its own llama.cpp
contexts with mean pooling, separate from the completion model; the memory thread is its only
caller. :class:`EmbeddingContext` is the engine underneath, shared with
``LlamaCppBackend.embed``.

Where the time goes, and what this module does about it (measured on this project's 2-core
machine with the random-weight test models; ``gemma-lsp bench rag`` reports the rate):

* Attention cost grows with the square of the tokens in one ``llama_decode``, and llama.cpp
  computes it over the *whole batch*: sequences packed together are masked from each other, but
  the mask (filled on the CPU, one f16 cell per token pair, for the global and the
  sliding-window layers) and the attention still span all pairs. For a ~340-token code chunk on
  the 6-layer ``embedding`` test model about half of its ~6 ms decode is that quadratic part.
  So packing long texts together makes them slower, not faster; packing pays only for short
  texts (queries, small notes), where the fixed cost of a decode (~0.5 ms: graph set-up, ~25
  ops per layer) dominates. Texts are therefore sorted by length and packed up to
  ``pack_tokens`` per decode; a longer text gets a decode of its own.
* Tiny ops are dominated by threading overhead: two threads in one context meet at a barrier
  after every op, and one stalled thread stalls both. Independent contexts, one per worker
  thread with one llama.cpp thread each, use the cores without that (``workers``; ~1.5x one
  context with two threads); ctypes releases the GIL, so Python threads run them truly in
  parallel, tokenization included. The OS maps the weights once for all of them.
* Flash attention does not materialise and soft-max the full score matrix, and skips tiles the
  mask hides entirely (other sequences, beyond a sliding window): 245 vs 155 chunks/s.
* The Python around the decodes is numpy: one reusable token buffer, the batch's token,
  position and sequence arrays written in bulk, one vector read per sequence (llama-cpp-python's
  ``Llama.embed`` builds Python lists per token and per float).
* A causal Gemma (gemma/gemma2/gemma3) used as an embedder still runs its output head over the
  whole vocabulary for every token (llama.cpp's graph always ends in it): at Gemma 3's 262,144
  tokens a 32-token text took 252 ms instead of 1.5 ms on the tiny model. EmbeddingGemma has no
  output head; use it (``memory.embedding_model``) for memories.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from gemma_lsp.errors import ModelUnavailable

from .gguf import read_architecture
from .native import open_llama

EMBEDDING_ARCHES = ("gemma-embedding", "gemma", "gemma2", "gemma3")
MAX_TOKENS = 512  # per text: longer texts are cut (llama-cpp-python's embed cut at its batch size, 512)
PACK_TOKENS = 256  # per decode, for packing short texts together (see the module docstring)


class EmbeddingContext:
    """One llama.cpp context opened for mean-pooled embeddings, and the batching around it.

    Not thread-safe: one caller at a time (``GgufEmbedder`` gives each worker its own).
    The vector of a text does not depend on which texts share its decode (sequences are masked
    from each other) up to rounding: flash attention holds K and V in f16 and a packed decode
    groups sums differently, so a packed text's vector agrees with its vector alone to ~1e-3 of
    the components' scale (cosine > 0.99999; without flash attention ~1e-4, and slower).
    """

    def __init__(self, llm, *, max_tokens: int = MAX_TOKENS, pack_tokens: int = PACK_TOKENS) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self.max_tokens = min(max_tokens, llm.n_batch)
        self.pack_tokens = min(max(pack_tokens, 1), llm.n_batch)
        self.n_seq_max = int(llama_cpp.llama_n_seq_max(llm.ctx))
        self.dim = int(llama_cpp.llama_model_n_embd_out(llm._model.model))
        # None for encoder-only models (EmbeddingGemma keeps no KV cache between decodes).
        self._memory = llama_cpp.llama_get_memory(llm.ctx)
        self._vocab = llm._model.vocab
        n = max(self.max_tokens, self.pack_tokens)
        # The batch points into these arrays (kept alive with self): filled in bulk per decode.
        self._tokens = np.zeros(n, dtype=np.int32)
        self._pos = np.zeros(n, dtype=np.int32)
        self._n_seq_id = np.ones(n, dtype=np.int32)
        self._seq = np.zeros(n, dtype=np.int32)
        self._seq_ptrs = (self._seq.ctypes.data + 4 * np.arange(n, dtype=np.uint64)).astype(np.uintp)
        self._outputs = np.ones(n, dtype=np.int8)  # pooling reads every token's output
        batch = llama_cpp.llama_batch()
        batch.token = self._tokens.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token))
        batch.embd = None
        batch.pos = self._pos.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_pos))
        batch.n_seq_id = self._n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        batch.seq_id = self._seq_ptrs.ctypes.data_as(ctypes.POINTER(ctypes.POINTER(llama_cpp.llama_seq_id)))
        batch.logits = self._outputs.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
        self._batch = batch
        self._text_buf = np.zeros(1024, dtype=np.int32)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_tokens: int = MAX_TOKENS,
        pack_tokens: int = PACK_TOKENS,
    ) -> "EmbeddingContext":
        """A new context on the GGUF at ``path`` with mean pooling and flash attention.

        ``n_threads`` None = half the cores (the completion engine's share is the other half).
        """
        import llama_cpp

        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        n_batch = min(n_ctx, max(max_tokens, pack_tokens))  # a whole text must fit one decode
        llm = open_llama(
            model_path=str(path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
            n_threads=threads, n_threads_batch=threads, flash_attn=True,
            embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        )  # fmt: skip
        return cls(llm, max_tokens=max_tokens, pack_tokens=pack_tokens)

    def tokenize(self, text: str) -> np.ndarray:
        """The model's tokens for ``text`` (with its BOS, and EOS if the model adds one), cut to
        ``max_tokens``. A blank text is embedded as one space."""
        data = (text if text.strip() else " ").encode("utf-8")
        need = len(data) + 8  # at most one token per byte, plus the special tokens
        if len(self._text_buf) < need:
            self._text_buf = np.zeros(need, dtype=np.int32)
        while True:
            buf = self._text_buf
            n = self._lib.llama_tokenize(
                self._vocab, data, len(data), buf.ctypes.data_as(ctypes.POINTER(self._lib.llama_token)), len(buf),
                True, False,
            )  # fmt: skip
            if n >= 0:
                return buf[: min(n, self.max_tokens)].copy()
            self._text_buf = np.zeros(-n, dtype=np.int32)  # too small: llama.cpp says how many it needs

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One mean-pooled vector per text, in order: shape (len(texts), dim), float32."""
        return self.embed_tokens([self.tokenize(t) for t in texts])

    def embed_tokens(self, token_lists: Sequence[np.ndarray]) -> np.ndarray:
        """One vector per token list, in order: shortest first, packed up to ``pack_tokens`` per
        decode (and at most the context's ``n_seq_max`` sequences)."""
        out = np.empty((len(token_lists), self.dim), dtype=np.float32)
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        group: list[int] = []
        total = 0
        for i in order:
            n = len(token_lists[i])
            if group and (total + n > self.pack_tokens or len(group) >= self.n_seq_max):
                self._decode([token_lists[j] for j in group], out, group)
                group, total = [], 0
            group.append(i)
            total += n
        if group:
            self._decode([token_lists[j] for j in group], out, group)
        return out

    def _decode(self, seqs: list[np.ndarray], out: np.ndarray, rows: list[int]) -> None:
        lib = self._lib
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
        n = int(lens.sum())
        self._tokens[:n] = np.concatenate(seqs)
        starts = np.repeat(np.cumsum(lens) - lens, lens)
        self._pos[:n] = np.arange(n, dtype=np.int32) - starts
        self._seq[:n] = np.repeat(np.arange(len(seqs), dtype=np.int32), lens)
        self._batch.n_tokens = n
        if self._memory:  # a causal model keeps a KV cache: the previous batch must not be attended to
            lib.llama_memory_clear(self._memory, True)
        rc = lib.llama_decode(self._llm.ctx, self._batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} for {len(seqs)} texts ({n} tokens)")
        for s, row in enumerate(rows):
            ptr = lib.llama_get_embeddings_seq(self._llm.ctx, s)
            if not ptr:
                raise RuntimeError("llama.cpp returned no pooled embedding (is pooling enabled?)")
            out[row] = np.ctypeslib.as_array(ptr, shape=(self.dim,))

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None


class GgufEmbedder:
    """The memory ``Embedder`` over a Gemma-family GGUF, in ``workers`` parallel contexts.

    ``workers`` contexts (each with ``n_threads`` llama.cpp threads) split a call's texts between
    them; 1 (the default) leaves the other cores to completions. A benchmark or a bulk index on
    an idle machine can use one worker per core with ``n_threads=1``.
    """

    def __init__(
        self,
        path: Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        *,
        workers: int = 1,
        max_tokens: int = MAX_TOKENS,
        pack_tokens: int = PACK_TOKENS,
    ) -> None:
        self.path = Path(path).expanduser()
        arch = read_architecture(self.path)
        if arch not in EMBEDDING_ARCHES:
            raise ModelUnavailable(
                f"Embedding model {self.path} is a {arch!r} model; use a Gemma-family GGUF such as EmbeddingGemma."
            )
        self.architecture = arch
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.workers = max(1, workers)
        self.max_tokens, self.pack_tokens = max_tokens, pack_tokens
        self._contexts: list[EmbeddingContext] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """The vectors' length (loads the model)."""
        with self._lock:
            return self._open()[0].dim

    def _open(self) -> list[EmbeddingContext]:
        if not self._contexts:
            contexts: list[EmbeddingContext] = []
            try:
                for _ in range(self.workers):
                    contexts.append(EmbeddingContext.open(
                        self.path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                        max_tokens=self.max_tokens, pack_tokens=self.pack_tokens,
                    ))  # fmt: skip
            except BaseException:
                for context in contexts:
                    context.close()
                raise
            self._contexts = contexts
            if self.workers > 1:
                self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="gemma-lsp-embed")
        return self._contexts

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text, in order (long texts are cut to ``max_tokens`` tokens)."""
        texts = list(texts)
        with self._lock:
            contexts = self._open()
            k = min(len(contexts), len(texts))
            if k <= 1:
                return contexts[0].embed(texts)
            # Interleaved shares balance the work without knowing lengths; each worker tokenizes
            # and decodes its own share (both release the GIL).
            assert self._pool is not None
            futures = [self._pool.submit(contexts[w].embed, texts[w::k]) for w in range(1, k)]
            out = np.empty((len(texts), contexts[0].dim), dtype=np.float32)
            try:
                out[0::k] = contexts[0].embed(texts[0::k])
            finally:
                wait(futures)  # never leave a worker running on a context when the lock is released
            for w, future in enumerate(futures, 1):
                out[w::k] = future.result()
            return out

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            for context in self._contexts:
                context.close()
            self._contexts = []
