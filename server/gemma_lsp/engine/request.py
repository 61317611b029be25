"""What every backend is asked for: a prompt, how to sample, when to stop; and what it answers.

A prompt comes in one of three forms, so that any backend can serve it:

- :class:`TokenPrompt`: token ids made by a function that runs on the engine's worker with the
  model's tokenizer (a completion's FIM prompt: tokenizing a big file never blocks the loop, and
  the ids line up with the KV cache for reuse);
- :class:`TextPrompt`: plain text, tokenized by the backend (a remote server takes it as is);
- :class:`ChatPrompt`: chat messages, put in the model's chat format by the backend.

Sampling is data: :class:`SamplingSpec` holds the sampler specs of a preset
(``gemma_lsp.config.sampling``, as llama.cpp's ``common_params_sampling``) and a seed; an
in-process backend builds its numpy chain from them, a remote one maps them to request fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union

from .backend import SpecialTokens


class Tokenizer(Protocol):
    """What a :class:`TokenPrompt` builder may use: the loaded model's tokenizer and special ids."""

    special: SpecialTokens

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: list[int], *, special: bool = False) -> str: ...

    @property
    def n_ctx(self) -> int: ...


@dataclass(frozen=True)
class HealedTokens:
    """Prompt ids with tokens to back up: ``tokens[heal_at - count + 1 : heal_at + 1]`` are left
    out of the prompt and the generation must spell their text out first (token healing, see
    ``engine/pieces.py``); the answer starts after that text."""

    tokens: list[int]
    heal_at: int
    count: int = 1


@dataclass(frozen=True)
class TokenPrompt:
    """Token ids (or :class:`HealedTokens`) from ``build(tokenizer)``, called on the engine's worker."""

    build: Callable[[Tokenizer], "list[int] | HealedTokens"]

    @classmethod
    def of(cls, ids: Sequence[int]) -> "TokenPrompt":
        fixed = list(ids)
        return cls(lambda tokenizer: fixed)


@dataclass(frozen=True)
class TextPrompt:
    """Plain text; control tokens written in it (``<start_of_turn>``) become their ids."""

    text: str
    add_bos: bool = True


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatPrompt:
    """A conversation; the backend writes it in the model's chat format and opens the reply."""

    messages: tuple[ChatMessage, ...]


Prompt = Union[TokenPrompt, TextPrompt, ChatPrompt]


def fold_system(messages: tuple[ChatMessage, ...]) -> list[dict[str, str]]:
    """The messages as ``{role, content}`` with system messages put before the first user
    message: Gemma has no system role, and its own chat template does the same. Only system
    messages: they become the user's question."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out = []
    for message in messages:
        if message.role == "system":
            continue
        content = message.content
        if system and message.role == "user":
            content, system = f"{system}\n\n{content}", ""
        out.append({"role": message.role, "content": content})
    if system:
        out.append({"role": "user", "content": system})
    return out


@dataclass(frozen=True)
class SamplingSpec:
    """Sampler specs in order (empty: greedy) and the seed of the random selectors."""

    specs: tuple[Any, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class GenerationLimits:
    max_tokens: int
    max_lines: int | None = None  # stop before the newline that would start line max_lines + 1
    time_limit_s: float | None = None
    stop_ids: frozenset[int] | None = None  # None = the model's eos, end-of-turn, file separator


@dataclass
class GenerationRequest:
    """One generation: the prompt, how to sample, when to stop.

    ``key`` groups requests that supersede each other (a document URI for completions):
    submitting a request cancels every older unfinished request with the same key.

    ``sampling`` is data for any backend; the in-process token-level backends also accept a
    ready sampler object (``gemma_lsp.sampling.Sampler``), which tests use to script tokens.
    """

    prompt: Prompt
    sampling: Any = field(default_factory=SamplingSpec)  # SamplingSpec | Sampler
    limits: GenerationLimits = field(default_factory=lambda: GenerationLimits(max_tokens=64))
    key: str | None = None
    # False: the text arrives in one piece at the end (one wake-up of the event loop instead of
    # one per token, which is what a completion wants); True: piece by piece as generated.
    incremental: bool = True
    # Background work (filling the KV cache ahead of time): any foreground request cancels it.
    background: bool = False
    # Whose KV state the request uses: "completion" or "chat" (each keeps its own, so one never
    # throws away the other's prefix), and completion requests run between two chat tokens.
    lane: str = "completion"


@dataclass
class GenerationResult:
    text: str
    stop_reason: str  # "stop_token" | "max_tokens" | "max_lines" | "time_limit" | "prefetch"
    prompt_tokens: int
    tokens_reused: int
    tokens_evaluated: int
    tokens_generated: int
    engine_ms: float  # time the worker spent on this request (prompt build + eval + sampling)
    queue_ms: float  # time the request waited for the worker
    prefill_ms: float = 0.0  # of engine_ms: building and evaluating the prompt
    decode_ms: float = 0.0  # of engine_ms: the generated tokens (sampling included)
    threads: int = 0  # CPU threads the request ran on (0: not a CPU engine)
