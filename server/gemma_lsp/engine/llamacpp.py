"""The llama.cpp backend: GGUF Gemma models in-process through llama-cpp-python.

What it adds over ``llama_cpp.Llama``:
- the model file is checked before llama.cpp sees it (exists, readable, GGUF, a Gemma
  architecture), so a bad path gives one clear sentence instead of a crash or a stack trace;
- logits of the last position read straight from the context (no ``logits_all``);
- longest-common-prefix reuse of the KV cache, so an edit re-evaluates only what follows it;
- prompt evaluation that can be aborted mid-batch through llama.cpp's abort callback;
- llama.cpp's own logging silenced (stdout must stay clean for the stdio transport).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from gemma_lsp.config import LlamaCppModelSettings
from gemma_lsp.errors import Cancelled, ModelUnavailable, PromptTooLong

from .backend import EvalResult, ModelInfo, SpecialTokens
from .catalog import resolve
from .cores import CoreMeter
from .gguf import read_architecture
from .native import open_llama, silence_llama_logs

log = logging.getLogger(__name__)

SUPPORTED_ARCHES = ("gemma", "gemma2", "gemma3")
_ROPE_SCALING = {"none": 0, "linear": 1, "yarn": 2}
_SPACE_MARK = "\u2581".encode()  # SentencePiece's visible space


class LlamaCppBackend:
    """One GGUF Gemma model and one context (one KV cache) in this process."""

    def __init__(self, llm, path: Path, architecture: str, kv_reuse: bool = True) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self.threads = 0  # llama.cpp threads for the next evaluation (0: as the context was made)
        self._meter: CoreMeter | None = None
        model = llm._model
        self._n_vocab = model.n_vocab()
        self.special = SpecialTokens(
            bos=model.token_bos(),
            eos=model.token_eos(),
            end_of_turn=_valid(model.token_eot()),
            fim_prefix=_valid(model.token_prefix()),
            fim_suffix=_valid(model.token_suffix()),
            fim_middle=_valid(model.token_middle()),
            file_separator=_valid(llama_cpp.llama_vocab_fim_sep(model.vocab)),
        )
        self.info = ModelInfo(
            path=str(path),
            architecture=architecture,
            n_vocab=self._n_vocab,
            n_ctx=llm.n_ctx(),
            n_ctx_train=model.n_ctx_train(),
            n_params=model.n_params(),
            size_bytes=model.size(),
        )
        self._kv_reuse = kv_reuse
        self._n_swa = llama_cpp.llama_model_n_swa(model.model)
        self._n_batch = llm.n_batch
        self._use_context(llm._ctx, llm._batch)
        self._forked = False  # a second context on another backend's model (fork())
        self._embedder = None
        # Every token's bytes, read once: llama-cpp-python's one-token detokenize returned b""
        # for pieces longer than its 32-byte buffer (long runs of spaces, long identifiers).
        self._pieces = self._read_vocabulary()

    # ----------------------------------------------------------------- load
    @classmethod
    def load(cls, settings: LlamaCppModelSettings, progress=None) -> "LlamaCppBackend":
        """Check and load ``settings.path``; raises :class:`ModelUnavailable` with one sentence."""
        progress = progress or (lambda message, pct: None)
        path = resolve(settings.path, progress)
        arch = read_architecture(path)
        if arch not in SUPPORTED_ARCHES:
            raise ModelUnavailable(
                f"Model file {path} is a {arch!r} model; gemma-lsp runs Gemma models "
                f"({', '.join(SUPPORTED_ARCHES)})."
            )
        silence_llama_logs()

        progress("reading weights", 10)
        # model.n_threads, or (unset) the cores other processes leave free, looked at again before
        # every request (engine/cores.py says why); the load starts on half of them.
        threads = settings.n_threads or max(1, (os.cpu_count() or 2) // 2)
        kwargs = dict(
            model_path=str(path),
            n_ctx=settings.n_ctx,
            n_batch=settings.n_batch,
            n_ubatch=settings.n_batch,
            n_threads=threads,
            n_threads_batch=threads,
            rope_freq_base=settings.rope_freq_base,
            rope_freq_scale=settings.rope_freq_scale,
            yarn_ext_factor=settings.yarn_ext_factor,
            yarn_attn_factor=settings.yarn_attn_factor,
            yarn_beta_fast=settings.yarn_beta_fast,
            yarn_beta_slow=settings.yarn_beta_slow,
            yarn_orig_ctx=settings.yarn_orig_ctx,
            logits_all=False,
            swa_full=settings.swa_full,
        )
        if settings.rope_scaling is not None:
            kwargs["rope_scaling_type"] = _ROPE_SCALING[settings.rope_scaling]
        try:
            llm = open_llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(f"llama.cpp could not load model file {path} ({exc}).") from None
        backend = cls(llm, path, arch, kv_reuse=settings.kv_reuse)
        backend.threads = threads
        backend._meter = CoreMeter() if settings.n_threads is None else None
        if settings.warmup:
            progress("warming up", 80)
            backend.warm_up()
        progress("ready", 100)
        return backend

    def tune(self) -> None:
        """Before a request: run on the cores other processes leave free (unless n_threads is set)."""
        if self._meter is None:
            return
        threads = self._meter.free_cores()
        if threads != self.threads:
            self._lib.llama_set_n_threads(self._ctx.ctx, threads, threads)
            self.threads = threads

    def warm_up(self) -> None:
        """One evaluation so the first real request does not pay llama.cpp's one-time set-up."""
        started = time.perf_counter()
        self.eval([self.special.bos])
        self.reset()
        log.debug("warm-up took %.1f ms", (time.perf_counter() - started) * 1000)

    # ------------------------------------------------------------ tokenizer
    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        if not text:
            return [self.special.bos] if add_bos else []
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def detokenize(self, tokens: list[int], *, special: bool = False) -> str:
        return self._llm._model.detokenize(list(tokens), special=special).decode("utf-8", "replace")

    def token_bytes(self, token: int) -> bytes:
        return self._pieces[token]

    def vocabulary(self) -> list[bytes]:
        return self._pieces

    def _read_vocabulary(self) -> list[bytes]:
        """Straight from llama.cpp's vocabulary (0.4 s at 262k tokens; detokenizing each took 2.5 s)."""
        lib, vocab = self._lib, self._llm._model.vocab
        normal = lib.LLAMA_TOKEN_ATTR_NORMAL | lib.LLAMA_TOKEN_ATTR_USER_DEFINED
        out: list[bytes] = []
        for token in range(self._n_vocab):
            attr = lib.llama_vocab_get_attr(vocab, token)
            text = lib.llama_vocab_get_text(vocab, token)
            if attr & lib.LLAMA_TOKEN_ATTR_BYTE and text.startswith(b"<0x"):
                out.append(bytes([int(text[3:5], 16)]))
            elif attr & normal and not attr & (lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_UNUSED):
                out.append(text.replace(_SPACE_MARK, b" "))
            else:
                out.append(b"")
        return out

    @property
    def n_ctx(self) -> int:
        return self.info.n_ctx

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    def _use_context(self, ctx, batch) -> None:
        """Evaluate in ``ctx`` (a llama.cpp context: its own KV cache) with ``batch``."""
        self._ctx, self._batch = ctx, batch
        self._cached: list[int] = []
        self._memory = self._lib.llama_get_memory(ctx.ctx)
        self.full_reevaluations = 0  # reuse refused because the sliding window had moved on
        self._abort_flag: threading.Event | None = None
        # Checked by llama.cpp between graph computations: returning True aborts llama_decode.
        self._abort_cb = self._lib.ggml_abort_callback(self._should_abort)
        self._lib.llama_set_abort_callback(ctx.ctx, self._abort_cb, None)
        if self.threads:
            self._lib.llama_set_n_threads(ctx.ctx, self.threads, self.threads)

    def fork(self) -> "LlamaCppBackend":
        """The same loaded model with a KV cache of its own (a second llama.cpp context): chat
        keeps its conversation there while completions keep theirs, and the weights stay loaded
        once. Close the fork before the backend it came from."""
        from llama_cpp._internals import LlamaBatch, LlamaContext

        other = copy.copy(self)
        ctx = LlamaContext(model=self._llm._model, params=self._llm.context_params, verbose=False)
        batch = LlamaBatch(n_tokens=self._n_batch, embd=0, n_seq_max=1, verbose=False)
        other._use_context(ctx, batch)
        other._forked, other._embedder = True, None
        return other

    # ------------------------------------------------------------ evaluation
    @property
    def cached_tokens(self) -> list[int]:
        return list(self._cached)

    def reset(self) -> None:
        self._ctx.kv_cache_clear()
        self._cached = []

    def eval(self, tokens: list[int], abort: threading.Event | None = None) -> EvalResult:
        if not tokens:
            raise ValueError("eval needs at least one token")
        if len(tokens) > self.n_ctx:
            raise PromptTooLong(
                f"The prompt is {len(tokens)} tokens, more than the model's context of {self.n_ctx} (model.n_ctx): "
                "send less text (a smaller selection or message) or raise model.n_ctx."
            )
        cached = self._cached
        keep = 0
        limit = min(len(cached), len(tokens) - 1) if self._kv_reuse else 0  # at least one token for logits
        while keep < limit and cached[keep] == tokens[keep]:
            keep += 1
        if 0 < keep < len(cached) and self._n_swa > 0 and self._window_lost(keep):
            keep = 0
            self.full_reevaluations += 1
        return self._evaluate_from(keep, tokens, abort)

    def _window_lost(self, keep: int) -> bool:
        """True when sliding-window layers no longer hold the window that ends at ``keep``.

        Without a full-size SWA cache those layers keep only the last window of positions;
        reusing a prefix whose final window was already evicted would give wrong logits
        silently, so the caller evaluates from scratch instead (as llama-server does).
        """
        pos_min = self._lib.llama_memory_seq_pos_min(self._memory, 0)
        return pos_min > max(0, keep - self._n_swa)

    def extend(self, tokens: list[int], abort: threading.Event | None = None) -> EvalResult:
        """Append ``tokens`` to what the cache holds and return the next-token logits."""
        return self._evaluate_from(len(self._cached), self._cached + list(tokens), abort)

    def _evaluate_from(self, keep: int, tokens: list[int], abort: threading.Event | None) -> EvalResult:
        ctx, batch = self._ctx, self._batch
        if keep < len(self._cached):
            ctx.kv_cache_seq_rm(-1, keep, -1)
        self._cached = self._cached[:keep]
        todo = tokens[keep:]
        step = self._n_batch
        self._abort_flag = abort
        try:
            for i in range(0, len(todo), step):
                chunk = todo[i : i + step]
                if abort is not None and abort.is_set():
                    raise Cancelled("prompt evaluation aborted")
                batch.set_batch(batch=chunk, n_past=len(self._cached), logits_all=False)
                try:
                    ctx.decode(batch)
                except RuntimeError:
                    # An aborted decode (code 2) leaves the chunk's KV entries unknown: drop them.
                    ctx.kv_cache_seq_rm(-1, len(self._cached), -1)
                    if abort is not None and abort.is_set():
                        raise Cancelled("prompt evaluation aborted") from None
                    raise
                self._cached.extend(chunk)
        finally:
            self._abort_flag = None
        ptr = self._lib.llama_get_logits_ith(ctx.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()
        return EvalResult(logits=logits, tokens_reused=keep, tokens_evaluated=len(todo))

    def _should_abort(self, _data) -> bool:
        flag = self._abort_flag
        return bool(flag is not None and flag.is_set())

    # ------------------------------------------------------------ embeddings
    def embed(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled embeddings, shape (len(texts), n_embd), from a second context on the same
        (memory-mapped) file, batched as ``engine.embedder.EmbeddingContext`` explains.

        This causal model still computes its output head over the whole vocabulary for every
        token in embedding mode; an EmbeddingGemma GGUF (``GgufEmbedder``) does not. All cores,
        as llama-cpp-python's batch default gave this context before: with the output head's
        large matmuls two threads pay off here (measured 112 vs 66 chunks/s on the tiny model).
        """
        if self._embedder is None:
            from .embedder import EmbeddingContext

            self._embedder = EmbeddingContext.open(
                self.info.path, n_ctx=min(self.n_ctx, 2048), n_threads=os.cpu_count() or 1
            )
        return self._embedder.embed(list(texts))

    def close(self) -> None:
        self._abort_flag = None
        if self._forked:
            self._ctx.close()
            self._batch.close()
            return
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None
        if self._llm is not None:
            self._llm.close()


def _valid(token: int) -> int | None:
    return token if token is not None and token >= 0 else None
