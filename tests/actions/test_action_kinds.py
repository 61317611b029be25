"""The catalogue of code actions: what is offered when, and templates that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemma_lsp.actions import ACTIONS, ActionSpec, actions_for

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


def _ids(specs: list[ActionSpec]) -> list[str]:
    return [spec.id for spec in specs]


def test_a_selection_offers_all_five_actions():
    offered = actions_for(has_selection=True, has_diagnostics=False)
    assert _ids(offered) == ["ask", "explain", "fix", "document", "tests"]


def test_a_selection_with_diagnostics_offers_all_five_with_the_fix_first():
    offered = actions_for(has_selection=True, has_diagnostics=True)
    assert _ids(offered) == ["fix", "ask", "explain", "document", "tests"]


def test_diagnostics_without_a_selection_offer_the_fix_alone():
    [fix] = actions_for(has_selection=False, has_diagnostics=True)
    assert (fix.id, fix.title, fix.kind, fix.edits) == ("fix", "Fix with Gemma", "quickfix", True)


def test_neither_selection_nor_diagnostics_offers_nothing():
    assert actions_for(has_selection=False, has_diagnostics=False) == []


def test_the_catalogue():
    table = {spec.id: (spec.title, spec.template, spec.kind, spec.edits) for spec in ACTIONS}
    assert table == {
        "ask": ("Ask Gemma about this…", "ask", "refactor", False),
        "explain": ("Explain with Gemma", "explain", "refactor", False),
        "fix": ("Fix with Gemma", "fix", "quickfix", True),
        "document": ("Add documentation with Gemma", "document", "refactor.rewrite", True),
        "tests": ("Write tests with Gemma", "test", "refactor.extract", True),
    }
    assert not any(spec.kind.startswith("source") for spec in ACTIONS)


@pytest.mark.parametrize("spec", ACTIONS, ids=lambda spec: spec.id)
def test_every_actions_template_is_a_shipped_prompt(spec):
    assert (PROMPTS / f"{spec.template}.jinja").is_file()


def test_specs_are_frozen():
    with pytest.raises(AttributeError):
        ACTIONS[0].title = "other"  # type: ignore[misc]
