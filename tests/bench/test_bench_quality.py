"""``gemma-lsp bench quality``: the case picker, the scoring, and a small run on the tiny test model
(the JSON's shape and sane values; the tiny model's answers are noise, so no quality targets)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from gemma_lsp.bench import quality
from gemma_lsp.config import Settings


def test_cases_are_deterministic_real_code_cut_inside_the_line():
    a, b = quality.pick_cases(12, seed=5), quality.pick_cases(12, seed=5)
    assert len(a) == 12
    assert [(c.rel, c.line, c.cut) for c in a] == [(c.rel, c.line, c.cut) for c in b]
    assert len({c.rel for c in a}) == 12  # one case per file
    for c in a:
        assert c.rel.split("/")[0] in quality.PACKAGES and "/tests/" not in f"/{c.rel}"
        line = c.original
        assert line.isascii() and not line.strip().startswith("#") and '"""' not in line
        assert len(line) - c.indent >= 12
        assert c.indent + 2 <= c.cut <= len(line) - 4
        assert c.start + c.expected == line and c.original[: c.indent] + c.typed == c.start
        # the cold document ends the line at the cut and keeps what follows
        cold = c.document(c.start).split("\n")
        assert cold[c.line] == c.start and cold[c.line + 1 :] == c.lines[c.line + 1 :]
        assert c.prefix(c.start).endswith("\n" + c.start) or c.line == 0
    other = quality.pick_cases(12, seed=6)
    assert [(c.rel, c.line) for c in other] != [(c.rel, c.line) for c in a]


def test_code_lines_skip_docstrings_comments_and_short_lines():
    lines = [
        "def f(values):",
        '    """Summarise the values.',
        "    total = sum(values) inside the docstring",
        '    """',
        "    # a comment that is long enough",
        "    x = 1",
        "    total = sum(values) + len(values)",
        "    name = 'caf\u00e9 au lait et croissant'",
    ]
    assert quality.code_lines(lines) == [0, 6]


def _case(original: str, cut: int) -> quality.Case:
    return quality.Case("pkg/mod.py", 0, len(original) - len(original.lstrip()), cut, original + "\n")


def test_score_exact_similarity_empty_and_word_fragments():
    case = _case("    total = compute_total(values)", 12)  # expected: "compute_total(values)"
    exact = quality.score(case, quality.Answer("compute_total(values)  \nmore", 1.0, {"stop_reason": "stop_token"}))
    assert exact["exact"] and exact["similarity"] == 1.0 and not exact["empty"] and not exact["fragment"]
    cut = quality.score(case, quality.Answer("compute_to", 1.0, {"stop_reason": "time_limit"}))
    assert not cut["exact"] and cut["fragment"] and 0 < cut["similarity"] < 1
    # the same text stopped by a stop token, or ending where the expected word ends, is no fragment
    assert not quality.score(case, quality.Answer("compute_to", 1.0, {"stop_reason": "stop_token"}))["fragment"]
    assert not quality.score(case, quality.Answer("compute_total", 1.0, {"stop_reason": "max_tokens"}))["fragment"]
    empty = quality.score(case, quality.Answer("\n    return total", 1.0, {}))
    assert empty["empty"] and empty["similarity"] == 0.0


def test_suggestion_text_starts_at_the_cursor():
    document = "x = 1\n    total = comp\n"
    pos = lambda line, character: SimpleNamespace(line=line, character=character)
    item = lambda text, start: SimpleNamespace(insert_text=text, range=SimpleNamespace(start=start))
    at_cursor = SimpleNamespace(items=[item("ute(x)", pos(1, 16))])
    earlier = SimpleNamespace(items=[item("total = compute(x)", pos(1, 4))])
    assert quality.suggestion_text(at_cursor, document, 1, 16) == ("ute(x)", 0)
    assert quality.suggestion_text(earlier, document, 1, 16) == ("ute(x)", 12)
    assert quality.suggestion_text(SimpleNamespace(items=[]), document, 1, 16) == ("", 0)
    assert quality.suggestion_text(None, document, 1, 16) == ("", 0)


def test_bench_quality_json_on_the_tiny_model(tiny_model, capsys):
    pytest.importorskip("llama_cpp")
    argv = ["--json", "--quiet", "--model", str(tiny_model), "--cases", "3", "--seed", "2",
            "--settings", '{"completion": {"max_tokens": 16}}']  # fmt: skip
    assert quality.main(argv) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["suite"] == "quality" and report["cases"] == 3 and report["seed"] == 2
    assert report["model_file"] == str(tiny_model) and report["threads"] >= 1
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    for side in ("ours", "peer"):
        assert set(report[side]) == {"cold", "typed"}
        for mode, m in report[side].items():
            assert m["cases"] == 3, (side, mode)
            for key in ("exact_line", "edit_similarity", "empty_rate", "fragment_rate"):
                assert 0.0 <= m[key] <= 1.0, (side, mode, key)
            assert 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p95"]
            assert len(m["worst"]) == 3 and all({"expected", "got", "where"} <= set(w) for w in m["worst"])
            assert sum(m["sources"].values()) == 3 and m["ranges_before_cursor"] == 0
    # the server's answers came from the engine with its FIM prompt; the peer's from a plain prefix
    assert report["ours"]["cold"]["sources"] == {"engine": 3}
    assert set(report["ours"]["cold"]["prompt_mode"]) <= {"fim-spm", "fim-psm", "prefix"}
    assert report["ours"]["cold"]["prefill_tokens_per_s"] > 0
    assert report["peer"]["cold"]["prompt_mode"] == {"prefix": 3}
    assert report["peer"]["cold"]["prefill_tokens_per_s"] > 0 and report["peer"]["cold"]["decode_tokens_per_s"] > 0
    assert report["peer_setup"]["n_threads"] == report["threads"] and report["peer_setup"]["n_ctx"] == 8192
    assert set(report["ratios"]) == {"exact_line_cold", "exact_line_typed", "latency_p50_cold", "latency_p50_typed"}
    assert report["ratios"]["latency_p50_typed"] > 0

    assert set(report["sampler"]) == set(Settings().sampling.presets)
    for preset in report["sampler"].values():
        assert preset["sampler_ms_p50"] > 0 and preset["share_of_decode"] > 0
    assert report["sampler_setup"]["tokens"] == 32 and report["sampler_setup"]["prompt_tokens"] > 32
    assert report["duration_s"]["total"] > 0
