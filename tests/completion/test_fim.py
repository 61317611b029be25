"""Prompt building on the tiny model's real tokenizer: the prefix-only form for a model without
FIM tokens (Gemma 3) puts the lines after the cursor's line before the text that leads to it."""

from __future__ import annotations

import dataclasses

import pytest

from gemma_lsp.completion.fim import FimPromptBuilder, FimWindows, after_start
from gemma_lsp.config import LlamaCppModelSettings
from gemma_lsp.engine import HealedTokens
from gemma_lsp.engine.llamacpp import LlamaCppBackend


class WithoutFim:
    """The tiny model's tokenizer with its FIM tokens taken away, as Gemma 3's vocabulary has none."""

    def __init__(self, backend: LlamaCppBackend) -> None:
        self._backend = backend
        self.special = dataclasses.replace(backend.special, fim_prefix=None, fim_suffix=None, fim_middle=None)

    def tokenize(self, text: str, **kw) -> list[int]:
        return self._backend.tokenize(text, **kw)

    def detokenize(self, tokens: list[int], **kw) -> str:
        return self._backend.detokenize(tokens, **kw)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    backend = LlamaCppBackend.load(LlamaCppModelSettings(path=tiny_model, n_ctx=2048))
    yield WithoutFim(backend)
    backend.close()


def prompt_text(tokenizer, built) -> str:
    tokens = built.tokens if isinstance(built, HealedTokens) else built
    assert tokens[0] == tokenizer.special.bos
    return tokenizer.detokenize(tokens[1:])


BEFORE = "import os\n\ndef f(x):\n    total = x + 1\n    "
AFTER = "\n\nprint(f(2))\nprint(f(3))\n"


def test_the_lines_after_the_cursors_line_come_first_then_a_blank_line_then_the_prefix(tokenizer):
    text = BEFORE + "ret" + AFTER
    builder = FimPromptBuilder()
    built = builder.build(tokenizer, "file:///f.py", text, len(BEFORE) + 3, FimWindows(256, 256))
    assert builder.mode == "prefix"
    assert prompt_text(tokenizer, built) == "\nprint(f(2))\nprint(f(3))\n\n" + BEFORE + "ret"


def test_the_block_keeps_only_whole_lines_that_fit_its_budget(tokenizer):
    after = "".join(f"value_{i} = compute_something({i}, {i * 7})\n" for i in range(200))
    text = BEFORE + "\n" + after
    built = FimPromptBuilder().build(tokenizer, "file:///g.py", text, len(BEFORE), FimWindows(256, 40))
    block = prompt_text(tokenizer, built)[: -len(BEFORE)]
    assert block.endswith("\n\n") and after.startswith(block[:-1])  # whole lines from the top
    assert 0 < len(tokenizer.tokenize(block)) <= 40 + 2
    assert block.count("\n") >= 2


def test_no_block_on_the_last_line_or_with_a_zero_budget(tokenizer):
    builder = FimPromptBuilder()
    assert prompt_text(tokenizer, builder.build(tokenizer, "file:///h.py", BEFORE, len(BEFORE), FimWindows(256, 256))) == BEFORE
    text = BEFORE + AFTER
    assert prompt_text(tokenizer, builder.build(tokenizer, "file:///h.py", text, len(BEFORE), FimWindows(256, 0))) == BEFORE


def test_typing_on_the_cursors_line_leaves_the_start_of_the_prompt_as_it_was(tokenizer):
    builder = FimPromptBuilder()
    windows = FimWindows(256, 256, heal=False)
    first = builder.build(tokenizer, "file:///k.py", BEFORE + AFTER, len(BEFORE), windows)
    typed = BEFORE + "return total" + AFTER
    second = builder.build(tokenizer, "file:///k.py", typed, len(BEFORE) + len("return total"), windows)
    # The KV cache of the first prompt serves the second: all of it but the indentation's token,
    # which the tokenizer merges with the word typed after it.
    assert second[: len(first) - 1] == first[:-1]


def test_after_start_is_the_next_line_or_the_end():
    assert after_start("a\nb\nc", 0) == 2
    assert after_start("a\nb\nc", 3) == 4
    assert after_start("a\nb\nc", 5) == 5
