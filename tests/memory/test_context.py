"""The context builder: headers, duplicates and overlaps, whole chunks first, one truncated last,
the budget never exceeded; recent episodic memories; the completion-side chunk retrieval."""

from __future__ import annotations

import random

import pytest

from gemma_lsp.memory import Memory
from gemma_lsp.memory.context import (
    TRUNCATION_MARKER,
    build_context,
    build_recent,
    estimate_tokens,
    retrieve_chunks,
    select_chunks,
    source_label,
    source_path,
)
from gemma_lsp.memory.search import SearchIndex

NS = "ws-context"
NOW = 2_000_000_000.0
ROOT = "/home/me/project"


def words(text: str) -> int:
    """A simple deterministic tokenizer: one token per whitespace-separated word, one per newline."""
    return len(text.split()) + text.count("\n")


def code(path: str, first: int, last: int, text: str, **kw) -> Memory:
    source = {"uri": f"file://{ROOT}/{path}",
              "range": {"start": {"line": first - 1, "character": 0}, "end": {"line": last - 1, "character": 80}}}  # fmt: skip
    kw.setdefault("created_at", NOW - 60)
    return Memory(namespace=NS, tier="semantic", kind="code_chunk", text=text, source=source, **kw)


def note(text: str, **kw) -> Memory:
    kw.setdefault("created_at", NOW - 60)
    kw.setdefault("kind", "note")
    return Memory(namespace=NS, tier=kw.pop("tier", "long_term"), text=text, **kw)


def lines(prefix: str, n: int) -> str:
    return "\n".join(f"{prefix} line {i}" for i in range(n))


# ---- headers --------------------------------------------------------------------------------


def test_headers_name_the_source_or_the_kind_and_tags():
    m = code("src/app.py", 12, 40, "x = 1")
    assert source_label(m, ROOT) == "src/app.py:12-40"
    assert source_label(m) == f"{ROOT}/src/app.py:12-40"
    one_line = code("a.py", 3, 3, "y = 2")
    assert source_label(one_line, ROOT) == "a.py:3"
    ends_at_col0 = Memory(namespace=NS, tier="semantic", kind="code_chunk", text="z", source={
        "uri": "file:///r/b.py", "range": {"start": {"line": 9, "character": 0}, "end": {"line": 20, "character": 0}}})  # fmt: skip
    assert source_label(ends_at_col0, "file:///r") == "b.py:10-20"
    assert source_label(note("remember this", tags=["style", "py"])) == "note (py, style)"
    assert source_label(note("plain")) == "note"
    assert source_path("file:///a%20b/c.py", "/a b") == "c.py" and source_path("untitled:1") == "untitled:1"
    out = build_context([m, note("use tabs", tags=["style"])], 1000, words, root=ROOT)
    assert out == "# src/app.py:12-40\nx = 1\n\n# note (style)\nuse tabs\n"


# ---- duplicates and overlaps ----------------------------------------------------------------


def test_duplicates_contained_text_and_overlapping_ranges_are_dropped():
    best = code("src/app.py", 10, 30, "def handler():\n    return compute(a, b)\n")
    chosen = select_chunks(
        [
            best,
            note("  def handler():\n    return compute(a, b)  "),  # same text, other whitespace
            note("return compute(a, b)"),  # contained in the best one
            code("src/app.py", 25, 50, "other text in an overlapping range"),
            code("src/app.py", 31, 40, "an adjacent range is no overlap"),
            code("src/other.py", 10, 30, "same lines, another file"),
        ],
        10_000,
        words,
    )
    assert [c.text for c in chosen] == [
        "def handler():\n    return compute(a, b)", "an adjacent range is no overlap", "same lines, another file"]  # fmt: skip


def test_search_hits_and_memories_are_both_accepted():
    index = SearchIndex()
    index.rebuild([code("a.py", 1, 2, "def alpha(): pass"), code("b.py", 1, 2, "def alpha_beta(): pass")])
    hits = index.search("alpha", namespace=NS, now=NOW)
    assert build_context(hits, 100, words, root=ROOT) == build_context([h.memory for h in hits], 100, words, root=ROOT)


# ---- budget ---------------------------------------------------------------------------------


def test_whole_chunks_first_then_one_truncated_at_a_line_boundary():
    big = code("big.py", 1, 40, lines("big", 40))  # 40 lines * 4 tokens
    small1 = code("s1.py", 1, 2, lines("small one", 2))
    small2 = code("s2.py", 1, 2, lines("small two", 2))
    budget = 60
    chunks = select_chunks([big, small1, small2], budget, words, label=lambda m: source_label(m, ROOT))
    assert [c.label for c in chunks] == ["s1.py:1-2", "s2.py:1-2", "big.py:1-40"]
    assert [c.truncated for c in chunks] == [False, False, True]
    cut = chunks[-1].text
    assert cut.endswith("\n" + TRUNCATION_MARKER)
    kept = cut.split("\n")[:-1]
    assert kept == big.text.split("\n")[: len(kept)] and 1 <= len(kept) < 40  # whole lines, from the start
    out = build_context([big, small1, small2], budget, words)
    assert words(out) <= budget
    # the cut is as long as the budget allows: one more line would not fit
    longer = out.replace(TRUNCATION_MARKER, f"big line {len(kept)}\n{TRUNCATION_MARKER}")
    assert words(longer) > budget


def test_only_the_best_passed_over_chunk_is_truncated():
    a = code("a.py", 1, 30, lines("a", 30))
    b = code("b.py", 1, 30, lines("b", 30))
    chunks = select_chunks([a, b], 40, words, label=lambda m: source_label(m, ROOT))
    assert len(chunks) == 1 and chunks[0].label == "a.py:1-30" and chunks[0].truncated
    assert select_chunks([a, b], 40, words, truncate=False) == []


def test_nothing_fits_gives_an_empty_block():
    m = code("a.py", 1, 1, "one_single_long_line = 1 + 2 + 3 + 4 + 5")
    assert build_context([m], 3, words) == ""
    assert build_context([m], 0, words) == "" and build_context([], 100, words) == ""
    assert build_context([note("   \n  ")], 100, words) == ""


@pytest.mark.parametrize("count", [words, estimate_tokens, len])
def test_the_budget_is_never_exceeded(count):
    rng = random.Random(7)
    memories = [code(f"f{i}.py", i * 100 + 1, i * 100 + 1 + rng.randint(0, 30), lines(f"chunk{i}", rng.randint(1, 30)))
                for i in range(12)]  # fmt: skip
    for budget in [1, 5, 17, 40, 99, 250, 600, 5000]:
        rng.shuffle(memories)
        out = build_context(memories, budget, count)
        assert count(out) <= budget
        assert out.count(TRUNCATION_MARKER) <= 1
        if TRUNCATION_MARKER in out:
            assert out.rstrip("\n").endswith(TRUNCATION_MARKER)  # the truncated chunk is the last


def test_order_is_rank_order():
    ms = [note(f"memory number {i}") for i in range(5)]
    out = build_context(ms, 1000, words)
    assert [line for line in out.splitlines() if line.startswith("memory")] == [m.text for m in ms]


# ---- recent episodic ------------------------------------------------------------------------


def test_recent_memories_newest_chosen_shown_oldest_first():
    turns = [
        Memory(namespace=NS, tier="episodic", kind="chat_turn", text=f"turn {i} " + "word " * 5, created_at=NOW - (5 - i) * 3600)
        for i in range(5)
    ]  # oldest first here
    newest_first = list(reversed(turns))
    out = build_recent(newest_first, 30, words, now=NOW)
    assert words(out) <= 30
    shown = [line.split()[1] for line in out.splitlines() if line.startswith("turn")]
    assert shown == sorted(shown) and "4" in shown and "0" not in shown  # newest kept, chronological
    assert out.startswith("# chat_turn, ")
    assert "# chat_turn, 1 h ago\n" in out
    accepted = Memory(namespace=NS, tier="episodic", kind="accepted_completion", text="return a + b",
                      created_at=NOW - 90, source={"uri": f"file://{ROOT}/m.py"})  # fmt: skip
    assert build_recent([accepted], 100, words, root=ROOT, now=NOW) == "# accepted_completion, 1 min ago: m.py\nreturn a + b\n"


# ---- completion-side retrieval --------------------------------------------------------------


def test_retrieve_chunks_for_completion():
    index = SearchIndex()
    index.rebuild(
        [
            code("src/http.py", 1, 3, "def parse_response(raw):\n    return Response(raw)"),
            code("src/current.py", 1, 2, "def parse_response_fast(raw): ..."),
            code("src/util.py", 5, 9, "def response_headers(resp):\n    return resp.headers"),
            note("parse_response must never raise", tags=["rules"]),
        ]
    )
    got = retrieve_chunks(index, "x = parse_response(data)", 200, words, NS, root=ROOT, exclude_paths=["src/current.py"], now=NOW)
    paths = [p for p, _ in got]
    assert set(paths[:2]) == {"src/http.py", "note (rules)"} and "src/current.py" not in paths
    assert dict(got)["src/http.py"] == "def parse_response(raw):\n    return Response(raw)"
    assert sum(words(f"{p}\n{t}\n") for p, t in got) <= 200
    small = retrieve_chunks(index, "parse_response", 8, words, NS, root=ROOT, now=NOW)
    assert sum(words(f"{p}\n{t}\n") for p, t in small) <= 8
    by_uri = retrieve_chunks(index, "parse_response", 200, words, NS, exclude_paths=[f"file://{ROOT}/src/http.py"])
    assert f"{ROOT}/src/http.py" not in [p for p, _ in by_uri] and by_uri
    assert retrieve_chunks(index, "", 100, words, NS) == [] and retrieve_chunks(index, "x", 0, words, NS) == []
    assert retrieve_chunks(index, "parse_response", 100, words, "other-ns") == []
