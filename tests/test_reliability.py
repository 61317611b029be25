"""The reliability suite: every class of bad input of ``gemma-lsp bench soak``, at a small scale,
against the real server with the tiny model. Each class must end with 0 crashes, 0 requests never
answered and 0 wrong answers (a result where an error was due, an internal error where a clear
one was due, a second answer, an "Error in server" pop-up, a secret stored, a slow or unclean
exit). The soak runs the same classes bigger and reports the figures."""

from __future__ import annotations

import pytest

from gemma_lsp.bench.soak import Soak, summary
from system_tools import required_tool


@pytest.fixture(scope="module")
def soak(tmp_path_factory, tiny_model):
    return Soak(str(tiny_model), tmp_path_factory.mktemp("soak"), scale=0.25, requests=400, seed=1)


@pytest.mark.parametrize("name", Soak.CLASSES)
def test_every_bad_input_is_survived_and_answered(soak, name):
    if name == "store_outage":
        required_tool("redis-server", "the store-outage class kills and restarts a real one")
    result = soak.run_class(name, getattr(soak, name))
    assert result.sent > 0, f"{name} sent nothing: the class proves nothing"
    assert (result.crashes, result.unanswered, result.wrong) == (0, 0, 0), "\n".join(result.notes)


def test_the_report_names_every_target(soak):
    report = summary([], 0)
    assert set(report["targets"]) == {
        "no_crashes", "no_unanswered_requests", "no_wrong_answers", "no_secrets_stored",
        "rss_growth_le_50mb_over_mixed", "bad_input_answered_within_1s",
    }
