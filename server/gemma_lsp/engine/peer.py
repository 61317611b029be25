"""A peer baseline for benchmarks: plain prefix completion through llama-cpp-python's own API.

Servers such as lsp-ai and llm-ls, given a model without FIM tokens, send the text before the
cursor as a plain prompt and take what the model writes next. :class:`PlainCompletion` does
the same in-process: one ``llama_cpp.Llama`` whose ``create_completion`` is called with the
prefix, greedy (temperature 0), a token limit and nothing else. The ``Llama`` object keeps
its own KV prefix cache between calls, as those servers do, so a second call that shares a
prefix with the first evaluates only what differs.

Nothing of gemma-lsp's completion path is used here (no FIM prompt, no windows, no
post-processing): this module is a yardstick for ``gemma-lsp bench quality``.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .catalog import resolve
from .native import open_llama

# llama-cpp-python reports a completion cut by its token limit as "length".
_FINISH_REASONS = {"length": "max_tokens", "stop": "stop_token"}


def server_threads(n_threads: int | None = None) -> int:
    """``n_threads`` when given, else llama-cpp-python's own default, half the cores: what servers
    built on it run with (gemma-lsp's server picks its threads per request, engine/cores.py)."""
    return n_threads or max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class PlainAnswer:
    """What one ``create_completion`` call wrote, how long it took, and llama.cpp's own figures."""

    text: str
    ms: float  # wall time of the call
    stop_reason: str  # "max_tokens" | "stop_token" (the names gemma-lsp's stats use)
    prompt_tokens: int
    tokens_evaluated: int  # prompt tokens llama.cpp evaluated (the rest came from its cache)
    prefill_ms: float
    tokens_generated: int
    decode_ms: float


class PlainCompletion:
    """One llama-cpp-python ``Llama`` answering prefix-only completions, greedy."""

    def __init__(self, model_path: Path | str | None, n_threads: int, n_ctx: int = 8192) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.path = resolve(model_path)
        self.n_threads = n_threads
        self._llm = open_llama(
            model_path=str(self.path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads
        )

    @property
    def swa_full(self) -> bool:
        """Whether llama.cpp keeps a full-size cache for sliding-window layers (its default here)."""
        return bool(self._llm.context_params.swa_full)

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def tail(self, text: str, max_tokens: int) -> str:
        """The end of ``text`` that holds its last ``max_tokens`` tokens (the whole text if it fits)."""
        tokens = self.tokenize(text)
        if len(tokens) <= max_tokens:
            return text
        head = self._llm.detokenize(tokens[:-max_tokens]).decode("utf-8", "replace")
        if text.startswith(head):
            return text[len(head) :]
        return self._llm.detokenize(tokens[-max_tokens:]).decode("utf-8", "replace")

    def complete(self, prefix: str, max_tokens: int = 64) -> PlainAnswer:
        """``create_completion(prompt=prefix, max_tokens, temperature=0.0)``, timed."""
        self._lib.llama_perf_context_reset(self._llm.ctx)  # llama.cpp resets them on its own too
        chatter = io.StringIO()  # verbose Llama objects print cache hits to stderr
        started = time.perf_counter()
        with contextlib.redirect_stderr(chatter):
            out = self._llm.create_completion(prompt=prefix, max_tokens=max_tokens, temperature=0.0)
        ms = (time.perf_counter() - started) * 1000
        perf = self._lib.llama_perf_context(self._llm.ctx)
        choice = out["choices"][0]
        return PlainAnswer(
            text=choice["text"],
            ms=ms,
            stop_reason=_FINISH_REASONS.get(choice.get("finish_reason") or "", str(choice.get("finish_reason"))),
            prompt_tokens=int(out["usage"]["prompt_tokens"]),
            # llama.cpp's counters: decodes of several tokens (prompt) and of one token (generation)
            tokens_evaluated=perf.n_p_eval,
            prefill_ms=perf.t_p_eval_ms,
            tokens_generated=perf.n_eval,
            decode_ms=perf.t_eval_ms,
        )

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
