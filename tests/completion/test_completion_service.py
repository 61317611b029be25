"""The completion service in-process on the real engine: retrieval hook and its time budget."""

from __future__ import annotations

import asyncio
import time

import pytest

from gemma_lsp.config import CompletionSettings, LlamaCppModelSettings
from gemma_lsp.completion.lines import suggestion_lines, whole_part
from gemma_lsp.completion import CompletionService
from gemma_lsp.completion.context import Chunk, RingContext, similarity
from gemma_lsp.engine import EngineManager
from samplers import Scripted

TEXT = "import math\n\n\ndef area(radius):\n    r = radius\n    return "


class Notes:
    """A retriever over a fixed list of notes, with an optional delay (a slow store)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.queries: list[str] = []

    async def __call__(self, query: str, budget_tokens: int) -> list[Chunk]:
        self.queries.append(query)
        await asyncio.sleep(self.delay_s)
        return [Chunk("notes/geometry.md", "The area of a circle is pi times the radius squared.\n")]


@pytest.fixture
async def engine(tiny_model):
    m = EngineManager(LlamaCppModelSettings(path=tiny_model, idle_unload_seconds=0))
    yield m
    await m.close()


async def test_retrieved_chunks_reach_the_prompt(engine):
    notes = Notes()
    service = CompletionService(engine, lambda: CompletionSettings(max_tokens=4), retriever=notes)
    await service.suggest("file:///a.py", TEXT, len(TEXT), path="a.py")
    last = service.stats.last
    assert last["retrieved_chunks"] == 1
    assert notes.queries == ["import math\n\n\ndef area(radius):\n    r = radius"]  # the lines above


async def test_typing_on_a_line_does_not_ask_the_retriever_again(engine):
    notes = Notes()
    service = CompletionService(engine, lambda: CompletionSettings(max_tokens=4), retriever=notes)
    await service.suggest("file:///a.py", TEXT, len(TEXT), path="a.py")
    typed = TEXT + "math.pi"
    await service.suggest("file:///a.py", typed, len(typed), path="a.py")
    assert len(notes.queries) == 1
    assert service.stats.last["tokens_evaluated"] <= 8  # the retrieved chunk did not move


async def test_a_slow_retriever_does_not_hold_the_completion_back(engine):
    notes = Notes(delay_s=1.0)
    service = CompletionService(engine, lambda: CompletionSettings(max_tokens=4, retrieval_timeout_ms=20), retriever=notes)
    await service.suggest("file:///a.py", "x = 1\n", 6)  # load the model first
    started = time.perf_counter()
    await service.suggest("file:///a.py", TEXT, len(TEXT), path="a.py")
    assert time.perf_counter() - started < 0.5
    assert service.stats.last["retrieved_chunks"] == 0
    await asyncio.sleep(1.1)  # the retrieval finished meanwhile and serves the next keystroke
    typed = TEXT + "m"
    await service.suggest("file:///a.py", typed, len(typed), path="a.py")
    assert service.stats.last["retrieved_chunks"] == 1
    assert notes.queries.count(notes.queries[-1]) == 1  # asked once for this place, while slow


def test_the_ring_keeps_the_newest_chunks_and_drops_near_duplicates():
    ring = RingContext(max_chunks=2, chunk_lines=4)
    text = "".join(f"line {i}\n" for i in range(20))
    assert ring.add("a.py", text, 2)
    assert not ring.add("a.py", text, 2)  # the same chunk again
    assert ring.add("b.py", "other\ncontent\n", 0)
    assert ring.add("c.py", "third\nfile\n", 0)
    assert [c.path for c in ring.chunks()] == ["b.py", "c.py"]
    assert [c.path for c in ring.chunks(exclude_path="c.py")] == ["b.py"]
    edited = "third\nfile\n"
    assert not ring.add("c.py", edited, 0)
    near = Chunk("x", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
    assert similarity(near, Chunk("x", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n")) > 0.9



async def test_control_characters_never_reach_the_editor(engine):
    await engine.load()
    backend = engine._runtime.backend
    tokens = [*backend.tokenize("ok\x7f\x01 = 1"), backend.special.eos]
    service = CompletionService(
        # No time limit: on a loaded machine one token can take long, and a time limit cuts the
        # answer to whole words, which is not what this test is about.
        engine, lambda: CompletionSettings(max_tokens=len(tokens), time_limit_ms=0), sampling=lambda s: Scripted(tokens)
    )
    suggestion = await service.suggest("file:///a.py", "x = 1\n", 6)
    assert suggestion is not None and suggestion.text == "ok = 1"


async def test_a_word_cut_by_the_time_limit_is_never_shown(engine):
    await engine.load()
    tokens = engine._runtime.backend.tokenize("total = compute_total(items)")
    scripted = lambda s: Scripted(tokens)  # noqa: E731
    cut = CompletionService(engine, lambda: CompletionSettings(time_limit_ms=1e-6), sampling=scripted)
    assert await cut.suggest("file:///b.py", "x = 1\n", 6) is None  # one token, "total", maybe not the whole word
    assert cut.stats.last["stop_reason"] == "time_limit"
    whole = CompletionService(engine, lambda: CompletionSettings(max_tokens=len(tokens)), sampling=scripted)
    suggestion = await whole.suggest("file:///c.py", "x = 1\n", 6)
    assert suggestion is not None and suggestion.text == "total = compute_total(items)"


def test_only_a_block_body_gets_a_multi_line_suggestion():
    def lines(document: str) -> int:
        return suggestion_lines(document, len(document), "python", 8)

    assert lines("def f():\n    ") == 8
    assert lines('def f():\n    """Say what f does."""\n    ') == 8
    assert lines('def f():\n    """Say\n    what f does.\n    """\n    # a comment\n    ') == 8
    assert lines("def f():\n    x = 1\n    ") == 1  # the next statement, one line at a time
    assert lines("def f():\n    return sel") == 1  # typed text on the line: its rest only
    assert lines("") == 8
    assert suggestion_lines("if x {\n\t", 8, "go", 8) == 8
    assert suggestion_lines("f(a, )", 5, "python", 8) == 1  # text right of the cursor


def test_a_time_limit_leaves_whole_lines_or_whole_words():
    assert whole_part("x = compute_tot", "time_limit", 1) == "x = "
    assert whole_part("for i in range(n):\n    total += val", "time_limit", 8) == "for i in range(n):"
    assert whole_part("x = compute_tot", "max_tokens", 1) == "x = compute_tot"
    assert whole_part("return x", "stop_token", 1) == "return x"


async def test_a_cold_file_is_answered_from_a_short_window_that_grows_in_the_background(engine):
    big = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(120)) + "def main():\n    "
    settings = CompletionSettings(prefix_tokens=1024, cold_prefix_tokens=128, max_tokens=4, extra_context_tokens=0)
    service = CompletionService(engine, lambda: settings)
    await service.suggest("file:///big.py", big, len(big))
    cold = service.stats.last
    assert cold["prefix_window"] == 128 and cold["prompt_tokens"] <= 128 + 2
    for _ in range(250):  # the full window is evaluated in the background
        if engine.stats.prefetched:
            break
        await asyncio.sleep(0.02)
    assert engine.stats.prefetched == 1
    typed = big + "r"
    await service.suggest("file:///big.py", typed, len(typed))
    warm = service.stats.last
    assert warm["prefix_window"] == 1024 and warm["prompt_tokens"] > 600  # about 3/4 of it, see fim.py
    assert warm["tokens_evaluated"] <= 3  # the background evaluation left the whole window in the cache


async def test_a_keystroke_before_the_window_grew_stays_on_the_short_window(engine):
    big = "".join(f"def g{i}(y):\n    return y * {i}\n\n" for i in range(120)) + "def main():\n    "
    settings = CompletionSettings(prefix_tokens=1024, cold_prefix_tokens=128, max_tokens=4, extra_context_tokens=0)
    service = CompletionService(engine, lambda: settings)
    await service.suggest("file:///b2.py", big, len(big))
    typed = big + "r"
    await service.suggest("file:///b2.py", typed, len(typed))  # at once: pre-empts the background work
    last = service.stats.last
    assert last["prefix_window"] == 128 and last["tokens_evaluated"] <= 3


async def _until_prefetched(engine, count: int) -> None:
    deadline = time.monotonic() + 5
    while engine.stats.prefetched < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert engine.stats.prefetched == count


async def test_another_line_is_answered_from_the_short_window_until_it_grows_there(engine):
    """The prompt's suffix part starts at the line after the cursor's: on another line the full
    prompt evaluated before is of no use, and its prefill would cost seconds."""
    body = "".join(f"def h{i}(z):\n    return z - {i}\n\n" for i in range(120))
    settings = CompletionSettings(
        prefix_tokens=1024, cold_prefix_tokens=128, suffix_tokens=256, cold_suffix_tokens=32,
        max_tokens=4, extra_context_tokens=0, grow_after_ms=0,
    )
    service = CompletionService(engine, lambda: settings)
    at = body.index("def h60(z):\n    ") + len("def h60(z):\n    ")
    await service.suggest("file:///c.py", body, at)
    assert (service.stats.last["prefix_window"], service.stats.last["suffix_window"]) == (128, 32)
    await _until_prefetched(engine, 1)
    typed = body[:at] + "r" + body[at:]
    await service.suggest("file:///c.py", typed, at + 1)  # the same line: the grown prompt serves
    assert (service.stats.last["prefix_window"], service.stats.last["suffix_window"]) == (1024, 256)
    assert service.stats.last["tokens_evaluated"] <= 3
    other = typed.index("def h90(z):\n    ") + len("def h90(z):\n    ")
    await service.suggest("file:///c.py", typed, other)
    assert (service.stats.last["prefix_window"], service.stats.last["suffix_window"]) == (128, 32)


async def test_a_closed_document_is_not_evaluated_ahead(engine):
    settings = CompletionSettings(max_tokens=4, grow_after_ms=60_000)
    service = CompletionService(engine, lambda: settings)
    await service.suggest("file:///gone.py", TEXT, len(TEXT), path="gone.py")
    service.forget("file:///gone.py")
    service.note_file("other.py", "x = 1\n" * 40)  # a new chunk for the ring: would evaluate ahead
    await asyncio.sleep(0.3)
    assert engine.stats.prefetched == 0
