"""Generation for token-level backends: prompt to tokens, then evaluate, sample, repeat.

The loop over a :class:`~gemma_lsp.engine.backend.Backend` (logits in, one token out) that
every in-process backend shares: the prompt is evaluated with KV-cache prefix reuse, the numpy
sampler chain picks each token, and the cancel flag is checked before every token (and by the
backend between prompt batches). Stops at a stop token or the token, line and time limits.
"""

from __future__ import annotations

import time

from gemma_lsp.errors import Cancelled
from gemma_lsp.sampling import Greedy, Sampler
from gemma_lsp.sampling.build import build_sampler

from .backend import Backend
from .pieces import PieceTable
from .request import (
    ChatMessage,
    ChatPrompt,
    GenerationRequest,
    GenerationResult,
    HealedTokens,
    Prompt,
    SamplingSpec,
    TextPrompt,
    fold_system,
)
from .runtime import RunControl


def gemma_chat_text(messages: tuple[ChatMessage, ...]) -> str:
    """Messages in Gemma's turn format, ending with an open model turn.

    Gemma has no system role: a system message is put before the first user message, as
    Gemma's own chat template does.
    """
    parts = []
    for message in fold_system(messages):
        role = "model" if message["role"] == "assistant" else "user"
        parts.append(f"<start_of_turn>{role}\n{message['content']}<end_of_turn>\n")
    return "".join(parts) + "<start_of_turn>model\n"


def prompt_tokens(backend: Backend, prompt: Prompt) -> tuple[list[int], bytes]:
    """The prompt's ids and the text the generation must spell out first (b"": no healing)."""
    if isinstance(prompt, TextPrompt):
        return backend.tokenize(prompt.text, add_bos=prompt.add_bos, special=True), b""
    if isinstance(prompt, ChatPrompt):
        return backend.tokenize(gemma_chat_text(prompt.messages), add_bos=True, special=True), b""
    built = prompt.build(backend)
    if isinstance(built, HealedTokens):
        tokens, end = built.tokens, built.heal_at + 1
        start = end - built.count
        if 0 < start < end <= len(tokens):
            return tokens[:start] + tokens[end:], b"".join(backend.token_bytes(t) for t in tokens[start:end])
        return tokens, b""
    return built, b""


def sampler_for(sampling: SamplingSpec | Sampler) -> Sampler:
    if isinstance(sampling, SamplingSpec):
        return build_sampler(sampling.specs, seed=sampling.seed) if sampling.specs else Greedy()
    return sampling


class TokenLoopRuntime:
    """A :class:`~gemma_lsp.engine.runtime.Runtime` over one token-level backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.info = backend.info
        self.pieces = PieceTable(backend.vocabulary())
        self._lanes: dict[str, Backend] = {"completion": backend}

    def lane(self, name: str) -> Backend:
        """The backend whose KV cache serves ``name``'s requests ("completion", "chat"): a fork of
        the loaded model with a cache of its own where the backend can fork, else the one."""
        found = self._lanes.get(name)
        if found is None:
            fork = getattr(self.backend, "fork", None)
            found = self._lanes[name] = fork() if fork is not None else self.backend
        return found

    def close(self) -> None:
        for name, lane in self._lanes.items():
            if lane is not self.backend:
                lane.close()
        self._lanes = {}
        self.backend.close()

    def run(self, request: GenerationRequest, control: RunControl) -> GenerationResult:
        started = time.perf_counter()
        backend = self.lane(request.lane)
        cancel = control.cancel
        limits = request.limits
        stop_ids = limits.stop_ids if limits.stop_ids is not None else backend.special.stop_ids()
        deadline = started + limits.time_limit_s if limits.time_limit_s else None

        backend.tune()
        prompt, heal = prompt_tokens(backend, request.prompt)
        max_new = max(0, min(limits.max_tokens + (1 if heal else 0), backend.n_ctx - len(prompt)))
        first = backend.eval(prompt, abort=cancel)
        prefilled = time.perf_counter()
        logits = first.logits
        sampler = sampler_for(request.sampling)
        sampler.reset()
        newlines = 0
        generated = 0
        stop_reason = "max_tokens" if not request.background else "prefetch"
        emit = control.emit
        for step in range(max_new):
            if control.between_tokens is not None:
                control.between_tokens()  # other lanes' requests run on their own KV caches
            if cancel.is_set():
                raise Cancelled("cancelled during generation")
            token = sampler.sample(self.pieces.mask(logits, heal) if heal else logits)
            control.sampled()
            sampler.accept(token)
            if token in stop_ids:
                stop_reason = "stop_token"
                break
            generated += 1
            piece = backend.token_bytes(token)
            if heal:  # spelling out the backed-up text: only what comes after it is the answer
                piece, heal = piece[len(heal):], heal[len(piece):]
            if limits.max_lines is not None and b"\n" in piece:
                allowed = limits.max_lines - 1 - newlines
                if piece.count(b"\n") > allowed:
                    cut = -1
                    for _ in range(allowed + 1):
                        cut = piece.index(b"\n", cut + 1)
                    if cut > 0:
                        emit(piece[:cut])
                    stop_reason = "max_lines"
                    break
                newlines += piece.count(b"\n")
            emit(piece)
            if deadline is not None and time.perf_counter() > deadline:
                stop_reason = "time_limit"
                break
            if step + 1 < max_new:
                logits = backend.extend([token], abort=cancel).logits
        done = time.perf_counter()
        return GenerationResult(
            text="",
            stop_reason=stop_reason,
            prompt_tokens=len(prompt),
            tokens_reused=first.tokens_reused,
            tokens_evaluated=first.tokens_evaluated,
            tokens_generated=generated,
            engine_ms=(done - started) * 1000,
            queue_ms=0.0,
            prefill_ms=(prefilled - started) * 1000,
            decode_ms=(done - prefilled) * 1000,
            threads=backend.threads,
        )
