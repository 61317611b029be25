"""The engine's contract, run against both backends: the in-process one and the remote one on a
real OpenAI-compatible server (llama-cpp-python's) serving the same tiny model.

Each test runs twice (the ``engine`` fixture is parametrized). Outputs are steered with a logit
bias (the random weights would otherwise write anything), which both backends honour: in-process
through the sampler chain, remotely as the request's ``logit_bias`` field.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gemma_lsp.app import Services
from gemma_lsp.config import LlamaCppModelSettings, Settings
from gemma_lsp.config.sampling import GreedySpec, LogitBiasSpec
from gemma_lsp.engine import (
    ChatMessage,
    ChatPrompt,
    EngineManager,
    GenerationLimits,
    GenerationRequest,
    GenerationResult,
    SamplingSpec,
    TextPrompt,
    TokenPrompt,
)
from gemma_lsp.errors import Cancelled

from remote_support import remote_settings

PROMPT = TextPrompt("def total(values):\n    return ")


@pytest.fixture(params=["llama.cpp", "openai"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def model_settings(backend, tiny_model, openai_server):
    if backend == "llama.cpp":
        return LlamaCppModelSettings(path=tiny_model, n_ctx=4096, idle_unload_seconds=0)
    return remote_settings(openai_server.url)


@pytest.fixture
async def engine(model_settings):
    manager = EngineManager(model_settings)
    await manager.load()
    yield manager
    await manager.close()


def forcing(*tokens: int, bias: float = 100.0) -> SamplingSpec:
    """Greedy with ``tokens`` pushed far ahead of every other token (the first one wins)."""
    boost = {t: bias - i for i, t in enumerate(tokens)}
    return SamplingSpec((LogitBiasSpec(bias=boost), GreedySpec()))


def one_token(vocab, text: str) -> int:
    ids = vocab.tokenize(text)
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens in the test model"
    return ids[0]


async def collect(engine: EngineManager, request: GenerationRequest) -> tuple[list[str], GenerationResult]:
    pieces, result = [], None
    async for item in engine.stream(request):
        if isinstance(item, GenerationResult):
            result = item
        else:
            pieces.append(item)
    assert result is not None
    return pieces, result


async def test_text_streams_piece_by_piece_up_to_max_tokens(engine, vocab):
    x = one_token(vocab, "x")
    pieces, result = await collect(engine, GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=6)))
    assert "".join(pieces) == "x" * 6 and len(pieces) >= 2
    assert (result.stop_reason, result.tokens_generated) == ("max_tokens", 6)
    assert result.prompt_tokens > 0 and result.engine_ms > 0


async def test_a_stop_token_ends_the_answer(engine, vocab):
    result = await engine.generate(
        GenerationRequest(PROMPT, forcing(vocab.special.eos), GenerationLimits(max_tokens=20))
    )
    assert (result.text, result.stop_reason, result.tokens_generated) == ("", "stop_token", 0)


async def test_the_line_limit_cuts_at_the_newline_that_would_start_one_line_too_many(engine, vocab):
    newline, x = one_token(vocab, "\n"), one_token(vocab, "x")
    two = await engine.generate(GenerationRequest(PROMPT, forcing(newline), GenerationLimits(max_tokens=20, max_lines=3)))
    assert (two.text, two.stop_reason) == ("\n\n", "max_lines")
    one = await engine.generate(GenerationRequest(PROMPT, forcing(newline), GenerationLimits(max_tokens=20, max_lines=1)))
    assert one.text == "" and one.tokens_generated <= 1
    plain = await engine.generate(GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=4, max_lines=1)))
    assert plain.text == "xxxx"


async def test_greedy_answers_are_the_same_for_the_same_prompt(engine):
    make = lambda: GenerationRequest(PROMPT, SamplingSpec(), GenerationLimits(max_tokens=8))  # noqa: E731
    first, second = await engine.generate(make()), await engine.generate(make())
    assert first.text == second.text and first.tokens_generated + (first.stop_reason == "stop_token") >= 1


async def test_a_token_prompt_is_built_with_the_backends_tokenizer(engine, vocab):
    seen = []

    def build(tokenizer):
        seen.append(tokenizer.special)
        return [tokenizer.special.bos, *tokenizer.tokenize("import os\n")]

    x = one_token(vocab, "x")
    result = await engine.generate(GenerationRequest(TokenPrompt(build), forcing(x), GenerationLimits(max_tokens=3)))
    assert result.text == "xxx" and seen and seen[0].bos is not None


async def test_a_newer_request_for_the_same_key_cancels_the_older_one(engine, vocab):
    x = one_token(vocab, "x")
    older = GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=400), key="doc")
    newer = GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=3), key="doc")
    seen: list[str] = []

    async def run_older():
        async for item in engine.stream(older):
            if isinstance(item, str):
                seen.append(item)
                if len(seen) == 1:
                    started.set()

    started = asyncio.Event()
    task = asyncio.ensure_future(run_older())
    await asyncio.wait_for(started.wait(), 30)
    result = await engine.generate(newer)
    with pytest.raises(Cancelled):
        await task
    assert result.text == "xxx"
    assert engine.stats.superseded == 1 and len("".join(seen)) < 400


async def test_cancelling_the_caller_frees_the_engine_at_once(engine, vocab):
    x = one_token(vocab, "x")
    started = asyncio.Event()

    async def long_answer():
        async for item in engine.stream(GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=2000))):
            started.set()

    task = asyncio.ensure_future(long_answer())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    began = time.perf_counter()
    result = await engine.generate(GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=2)))
    assert result.text == "xx" and engine.stats.cancelled == 1
    assert time.perf_counter() - began < 5  # not behind 2,000 tokens of the cancelled answer


async def test_the_time_limit_stops_generation(engine, vocab):
    x = one_token(vocab, "x")
    result = await engine.generate(
        GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=5000, time_limit_s=0.05))
    )
    assert result.stop_reason == "time_limit" and len(result.text) < 5000


async def test_chat_streams_its_answer_on_the_chat_lane(engine, vocab):
    x = one_token(vocab, "x")
    prompt = ChatPrompt((ChatMessage("system", "Answer briefly."), ChatMessage("user", "Say x.")))
    pieces, result = await collect(
        engine, GenerationRequest(prompt, forcing(x), GenerationLimits(max_tokens=5), lane="chat")
    )
    assert "".join(pieces) == "xxxxx" and len(pieces) >= 2
    assert (result.stop_reason, result.tokens_generated) == ("max_tokens", 5)


async def test_a_completion_is_served_while_a_chat_answer_streams(engine, vocab):
    x = one_token(vocab, "x")
    chat_started = asyncio.Event()
    chat = GenerationRequest(ChatPrompt((ChatMessage("user", "hi"),)), forcing(x), GenerationLimits(max_tokens=60), lane="chat")

    async def run_chat():
        out = []
        async for item in engine.stream(chat):
            if isinstance(item, str):
                out.append(item)
                chat_started.set()
        return "".join(out)

    task = asyncio.ensure_future(run_chat())
    await asyncio.wait_for(chat_started.wait(), 30)
    completion = await engine.generate(GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=2), key="doc"))
    assert completion.text == "xx"
    assert await task == "x" * 60


async def test_the_completion_service_suggests_through_either_backend(backend, model_settings, vocab):
    total = one_token(vocab, "total")
    settings = Settings(
        model=model_settings,
        sampling={"presets": {"forced": [{"type": "logit_bias", "bias": {total: 100.0}}, {"type": "greedy"}]}},
        completion={"preset": "forced", "max_tokens": 3, "max_lines": 1},
    )
    services = Services.from_settings(settings, memory=False)
    try:
        text = "def area(r):\n    return r * r\n\nx = "
        suggestion = await services.completions.suggest("file:///a.py", text, len(text), path="a.py", language="python")
        assert suggestion is not None and suggestion.text.replace(" ", "") == "totaltotaltotal"
        last = services.completions.stats.last
        assert last["source"] == "engine" and last["prompt_mode"] == "fim-spm"
    finally:
        await services.close()
