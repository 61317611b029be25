"""The one engine interface on the real in-process engine: prompts as tokens, text or chat
messages; sampler specs as data; the same stats whichever form the prompt takes."""

from __future__ import annotations

from gemma_lsp.config.sampling import DistributionSpec, GreedySpec, TemperatureSpec
from gemma_lsp.engine import (
    ChatMessage,
    ChatPrompt,
    EngineManager,
    GenerationLimits,
    GenerationRequest,
    SamplingSpec,
    TextPrompt,
    TokenPrompt,
)
from gemma_lsp.engine.tokenloop import gemma_chat_text


def tokens_of(manager: EngineManager, text: str, **kw) -> list[int]:
    return manager._runtime.backend.tokenize(text, **kw)


async def test_a_text_prompt_is_the_same_request_as_its_tokens(manager):
    text = "def add(a, b):\n    return"
    limits = GenerationLimits(max_tokens=8)
    as_text = await manager.generate(GenerationRequest(TextPrompt(text), limits=limits))
    ids = tokens_of(manager, text, add_bos=True, special=True)
    as_tokens = await manager.generate(GenerationRequest(TokenPrompt.of(ids), limits=limits))
    assert as_text.text == as_tokens.text and as_text.prompt_tokens == as_tokens.prompt_tokens == len(ids)
    assert as_tokens.tokens_evaluated == 1  # the same tokens: the KV cache kept all but the last


async def test_control_tokens_written_in_a_text_prompt_become_their_ids(manager):
    special = manager._runtime.backend.special
    ids = tokens_of(manager, "<|fim_prefix|>x", special=True)
    assert ids[0] == special.fim_prefix


def test_chat_messages_are_written_in_gemmas_turn_format():
    text = gemma_chat_text((
        ChatMessage("system", "Answer briefly."),
        ChatMessage("user", "What is 2+2?"),
        ChatMessage("assistant", "4"),
        ChatMessage("user", "And 3+3?"),
    ))  # fmt: skip
    assert text == (
        "<start_of_turn>user\nAnswer briefly.\n\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n4<end_of_turn>\n"
        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


async def test_a_chat_prompt_streams_a_reply_with_its_figures(manager):
    prompt = ChatPrompt((ChatMessage("user", "Explain this function."),))
    pieces, result = [], None
    async for item in manager.stream(GenerationRequest(prompt, limits=GenerationLimits(max_tokens=6))):
        if isinstance(item, str):
            pieces.append(item)
        else:
            result = item
    expected = tokens_of(manager, gemma_chat_text(prompt.messages), add_bos=True, special=True)
    assert result is not None and result.prompt_tokens == len(expected)
    assert result.tokens_generated == 6 and "".join(pieces)


async def test_sampler_specs_are_data_the_engine_builds_a_chain_from(manager):
    prompt = TextPrompt("import")
    limits = GenerationLimits(max_tokens=10)
    greedy = await manager.generate(GenerationRequest(prompt, SamplingSpec(), limits))
    explicit = await manager.generate(GenerationRequest(prompt, SamplingSpec((GreedySpec(),)), limits))
    assert greedy.text == explicit.text
    hot = (TemperatureSpec(temperature=5.0), DistributionSpec())
    first = await manager.generate(GenerationRequest(prompt, SamplingSpec(hot, seed=7), limits))
    again = await manager.generate(GenerationRequest(prompt, SamplingSpec(hot, seed=7), limits))
    other = await manager.generate(GenerationRequest(prompt, SamplingSpec(hot, seed=8), limits))
    assert first.text == again.text  # a seed makes a random chain repeatable
    assert first.text != other.text  # and another seed draws other tokens
