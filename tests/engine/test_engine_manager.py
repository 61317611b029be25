"""The EngineManager on the real engine: streaming, limits, latest-wins, cancel, idle unload."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gemma_lsp.config import LlamaCppModelSettings
from gemma_lsp.engine import (
    EngineManager,
    GenerationLimits,
    GenerationRequest,
    GenerationResult,
    TokenPrompt,
)
from gemma_lsp.errors import Cancelled, ModelUnavailable
from gemma_lsp.sampling import Greedy
from samplers import Scripted


def prompt_of(text: str):
    return TokenPrompt(lambda backend: [backend.special.bos, *backend.tokenize(text)])


async def test_generation_streams_text_and_reports_its_cost(manager):
    request = GenerationRequest(prompt_of("def main():\n"), Greedy(), GenerationLimits(max_tokens=12))
    parts, result = [], None
    async for item in manager.stream(request):
        if isinstance(item, GenerationResult):
            result = item
        else:
            parts.append(item)
    assert result is not None and result.tokens_generated == 12 and result.stop_reason == "max_tokens"
    assert "".join(parts)
    assert result.prompt_tokens == result.tokens_reused + result.tokens_evaluated
    assert result.engine_ms > 0


async def test_greedy_generation_is_deterministic(manager):
    make = lambda: GenerationRequest(prompt_of("import os\n"), Greedy(), GenerationLimits(max_tokens=16))
    first = await manager.generate(make())
    second = await manager.generate(make())
    assert first.text == second.text and first.text
    assert second.tokens_evaluated == 1  # the same prompt again: all but one token reused


@pytest.mark.parametrize("stop", ["eos", "end_of_turn", "file_separator"])
async def test_generation_stops_on_each_stop_token(manager, stop):
    sp = manager._runtime.backend.special
    a = manager._runtime.backend.tokenize("a")[0]
    request = GenerationRequest(prompt_of("x = "), Scripted([a, a, getattr(sp, stop), a]), GenerationLimits(max_tokens=50))
    result = await manager.generate(request)
    assert (result.text, result.stop_reason, result.tokens_generated) == ("aa", "stop_token", 2)


async def test_generation_stops_at_the_line_limit(manager):
    b = manager._runtime.backend
    request = GenerationRequest(
        prompt_of("x = "), Scripted([b.tokenize("a")[0], b.tokenize("\n")[0]]), GenerationLimits(max_tokens=50, max_lines=3)
    )
    result = await manager.generate(request)
    assert (result.text, result.stop_reason) == ("a\na\na", "max_lines")


async def test_a_newer_request_for_the_same_key_cancels_the_older(manager):
    long = GenerationLimits(max_tokens=3000)
    older = asyncio.ensure_future(manager.generate(GenerationRequest(prompt_of("a"), Greedy(), long, key="file:///x.py")))
    await asyncio.sleep(0.05)
    newer = await manager.generate(
        GenerationRequest(prompt_of("b"), Greedy(), GenerationLimits(max_tokens=4), key="file:///x.py")
    )
    with pytest.raises(Cancelled):
        await older
    assert newer.tokens_generated == 4
    assert manager.stats.superseded == 1 and manager.stats.cancelled == 1
    assert manager.stats.max_tokens_after_cancel <= 1


async def test_requests_for_other_keys_do_not_cancel_each_other(manager):
    limits = GenerationLimits(max_tokens=8)
    a, b = await asyncio.gather(
        manager.generate(GenerationRequest(prompt_of("a"), Greedy(), limits, key="file:///a.py")),
        manager.generate(GenerationRequest(prompt_of("b"), Greedy(), limits, key="file:///b.py")),
    )
    assert a.tokens_generated == b.tokens_generated == 8


async def test_cancelling_the_caller_stops_the_engine_within_one_token(manager):
    task = asyncio.ensure_future(
        manager.generate(GenerationRequest(prompt_of("a"), Greedy(), GenerationLimits(max_tokens=3500)))
    )
    await asyncio.sleep(0.1)  # well into generation (3,500 tokens take about a second here)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await manager.generate(GenerationRequest(prompt_of("z"), Greedy(), GenerationLimits(max_tokens=1)))
    assert manager.stats.cancelled == 1
    assert manager.stats.last_cancel["sampled_before"] > 0  # it was cancelled mid-generation
    assert manager.stats.last_cancel["sampled_after"] <= 1
    assert manager.stats.max_tokens_after_cancel <= 1


async def test_the_engine_never_runs_on_the_event_loop_thread(tiny_model):
    threads = set()

    class Recording(Greedy):
        def sample(self, logits):
            threads.add(threading.get_ident())
            return super().sample(logits)

    m = EngineManager(LlamaCppModelSettings(path=tiny_model, idle_unload_seconds=0))
    try:
        await m.generate(GenerationRequest(prompt_of("x"), Recording(), GenerationLimits(max_tokens=3)))
    finally:
        await m.close()
    assert threads and threading.get_ident() not in threads


async def test_the_model_unloads_when_idle_and_reloads_on_demand(tiny_model):
    m = EngineManager(LlamaCppModelSettings(path=tiny_model, idle_unload_seconds=0.2))
    try:
        await m.generate(GenerationRequest(prompt_of("x"), Greedy(), GenerationLimits(max_tokens=2)))
        assert m.loaded
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not m.loaded:
                break
        assert not m.loaded and m.stats.unloads == 1
        again = await m.generate(GenerationRequest(prompt_of("x"), Greedy(), GenerationLimits(max_tokens=2)))
        assert again.tokens_generated == 2 and m.stats.loads == 2
    finally:
        await m.close()


async def test_a_missing_model_fails_fast_every_time(tmp_path):
    m = EngineManager(LlamaCppModelSettings(path=tmp_path / "nope.gguf"))
    try:
        for _ in range(2):
            with pytest.raises(ModelUnavailable, match="does not exist"):
                await m.generate(GenerationRequest(prompt_of("x"), Greedy(), GenerationLimits(max_tokens=2)))
        assert m.stats.load_failures == 1
    finally:
        await m.close()


async def test_a_completion_runs_between_two_chat_tokens_on_its_own_kv_cache(manager):
    from gemma_lsp.engine import ChatMessage, ChatPrompt

    completion = GenerationRequest(prompt_of("def main():\n    " * 20), Greedy(), GenerationLimits(max_tokens=4))
    await manager.generate(completion)  # the completion's prompt is in its cache
    chat = GenerationRequest(
        ChatPrompt((ChatMessage("user", "Tell me everything."),)), Greedy(), GenerationLimits(max_tokens=3000),
        lane="chat",
    )
    pieces = 0
    done_during_chat = None
    stream = manager.stream(chat)
    async for item in stream:
        pieces += 1
        if pieces == 3:
            again = GenerationRequest(prompt_of("def main():\n    " * 20 + "x"), Greedy(), GenerationLimits(max_tokens=4))
            done_during_chat = await manager.generate(again)
            break
    await stream.aclose()
    assert done_during_chat is not None and manager.stats.interleaved == 1
    assert done_during_chat.tokens_evaluated <= 3  # the chat did not throw the completion's prefix away
    assert manager.stats.cancelled == 1  # the chat stream was left: it stops within a token
