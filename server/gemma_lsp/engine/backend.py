"""The token-level interface of in-process backends (llama.cpp now, gemma.cpp later): logits in,
tokens out. Generation over it is ``tokenloop.py``; what every backend (remote ones too)
implements is ``runtime.py``.

A backend is not thread-safe: the :class:`~gemma_lsp.engine.manager.EngineManager` calls it
from its one worker thread only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class SpecialTokens:
    """The ids the server needs to build prompts and to know when to stop."""

    bos: int
    eos: int
    end_of_turn: int | None
    fim_prefix: int | None
    fim_suffix: int | None
    fim_middle: int | None
    file_separator: int | None

    def stop_ids(self) -> frozenset[int]:
        return frozenset(i for i in (self.eos, self.end_of_turn, self.file_separator) if i is not None)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    architecture: str
    n_vocab: int
    n_ctx: int
    n_ctx_train: int
    n_params: int
    size_bytes: int


@dataclass
class EvalResult:
    """Logits for the next token after ``tokens`` and what it cost."""

    logits: np.ndarray  # float32, shape (n_vocab,); a copy the caller may keep
    tokens_reused: int  # prompt tokens whose KV entries were kept from the previous call
    tokens_evaluated: int  # prompt tokens actually run through the model


class Backend(Protocol):
    """One loaded model with one sequence of tokens in its KV cache."""

    info: ModelInfo
    special: SpecialTokens

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Token ids for ``text``; with ``special`` the text of control tokens becomes their ids."""

    def detokenize(self, tokens: list[int], *, special: bool = False) -> str:
        """Text for ``tokens``; control tokens are rendered only with ``special``."""

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (a byte-fallback token may be part of a UTF-8 character)."""

    threads: int  # CPU threads of the next evaluation (0: not a CPU engine)

    def tune(self) -> None:
        """Called before each request: adjust to the machine (e.g. the threads to the free cores)."""

    def vocabulary(self) -> list[bytes]:
        """Every token's bytes by id, b"" for control tokens (what token healing searches)."""

    @property
    def n_ctx(self) -> int: ...

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens whose KV entries are in the cache now, in order."""

    def eval(self, tokens: list[int], abort: threading.Event | None = None) -> EvalResult:
        """Make the KV cache hold exactly ``tokens`` and return the next-token logits.

        The longest common prefix with :attr:`cached_tokens` is reused; only the rest is
        evaluated (at least one token, to have logits). If ``abort`` is set during prompt
        evaluation, raises :class:`~gemma_lsp.errors.Cancelled` and the cache holds a prefix.
        """

    def extend(self, tokens: list[int], abort: threading.Event | None = None) -> EvalResult:
        """Append ``tokens`` to the cached sequence (a generated token) and return the next logits."""

    def embed(self, texts: list[str]) -> np.ndarray:
        """One pooled embedding per text, shape (len(texts), n_embd)."""

    def close(self) -> None:
        """Free the model and its context."""
