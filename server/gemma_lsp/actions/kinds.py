"""The catalogue of code actions, as data: what each is called, which prompt template it renders,
the code action kind clients file it under, and whether its answer becomes edits.

The kinds are LSP's dotted kind strings, kept here as plain text (no LSP types): clients group
and filter their menus by them, so each action takes the most specific kind that fits it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionSpec:
    """One code action: ``template`` names a prompt in ``prompts/``; ``edits`` says its answer is
    turned into edits of the document (else it is a chat answer shown to the user);
    ``needs_selection`` says it is offered only on a selection."""

    id: str
    title: str
    template: str
    kind: str
    edits: bool
    needs_selection: bool


ASK = ActionSpec("ask", "Ask Gemma about this…", "ask", "refactor", edits=False, needs_selection=True)
EXPLAIN = ActionSpec("explain", "Explain with Gemma", "explain", "refactor", edits=False, needs_selection=True)
# A quickfix: clients offer it on the lightbulb of a diagnostic. Without a selection the
# diagnostic's range stands in for one, so it does not need a selection.
FIX = ActionSpec("fix", "Fix with Gemma", "fix", "quickfix", edits=True, needs_selection=False)
# Documentation rewrites the selection in place (the same code, with docstrings and comments).
DOCUMENT = ActionSpec(
    "document", "Add documentation with Gemma", "document", "refactor.rewrite", edits=True, needs_selection=True
)
# Tests are new code derived from the selection, not a rewrite of it: "refactor.extract" is the
# kind for code drawn out of a selection into a new place, and it keeps the action in the
# refactor menu that selections open. "source" would be wrong: source actions act on the whole
# file, are listed apart from the selection's actions and may run unasked on save.
TESTS = ActionSpec("tests", "Write tests with Gemma", "test", "refactor.extract", edits=True, needs_selection=True)

ACTIONS: tuple[ActionSpec, ...] = (ASK, EXPLAIN, FIX, DOCUMENT, TESTS)


def actions_for(has_selection: bool, has_diagnostics: bool) -> list[ActionSpec]:
    """The actions to offer: all of them on a selection, the fix alone on diagnostics without a
    selection, none otherwise. With diagnostics the fix comes first."""
    if has_selection:
        offered = list(ACTIONS)
    else:
        offered = [spec for spec in ACTIONS if not spec.needs_selection] if has_diagnostics else []
    if has_diagnostics:
        offered.sort(key=lambda spec: spec is not FIX)
    return offered
