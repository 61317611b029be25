"""The edits of a document that put an action's replacement in place of its selection.

An action may rewrite the selection and nothing else: the changes are computed on the selection
alone, moved to document offsets, and checked to lie inside it before anyone applies them.
"""

from __future__ import annotations

from gemma_lsp.errors import GemmaLspError

from .diff import TextChange, minimal_edits


class OutsideSelection(GemmaLspError, ValueError):
    """A change would touch the document outside the selection the action was asked about."""


def selection_edits(document: str, start: int, end: int, replacement: str) -> list[TextChange]:
    """The minimal changes, as offsets into ``document``, that turn ``document[start:end]`` into
    ``replacement``; empty when they are equal."""
    if not 0 <= start <= end <= len(document):
        raise ValueError(f"The selection [{start}, {end}) lies outside the document of {len(document)} characters.")
    changes = [
        TextChange(change.start + start, change.end + start, change.text)
        for change in minimal_edits(document[start:end], replacement)
    ]
    return inside(changes, start, end)


def inside(changes: list[TextChange], start: int, end: int) -> list[TextChange]:
    """``changes`` themselves when every one lies within ``[start, end]``; raises
    ``OutsideSelection`` otherwise."""
    for change in changes:
        if not start <= change.start <= change.end <= end:
            raise OutsideSelection(
                f"The change of [{change.start}, {change.end}) reaches outside the selection "
                f"[{start}, {end}), so it is refused."
            )
    return changes
