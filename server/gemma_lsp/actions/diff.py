"""Minimal edits between two texts: a line diff refined to characters.

An action's answer replaces a whole selection, but sending it as one replacement moves the
user's cursor and folds, and rewrites lines the model copied unchanged. ``minimal_edits`` finds
the lines that differ (``difflib`` over lines) and, inside a changed line pair, only the
characters that differ, so a renamed variable is a one-word edit. Offsets are ``str`` indices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

# after every "\n", and after a "\r" that no "\n" follows: the line breaks an LSP client knows
_LINE_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")


@dataclass(frozen=True)
class TextChange:
    """Replace ``old[start:end]`` with ``text`` (an insertion when ``start == end``)."""

    start: int
    end: int
    text: str


def split_keepends(text: str) -> list[str]:
    """The lines of ``text``, each with its line break (``\\n``, ``\\r\\n`` or ``\\r``)."""
    lines = _LINE_END.split(text)
    return lines[:-1] if lines and not lines[-1] else lines


def minimal_edits(old: str, new: str) -> list[TextChange]:
    """The smallest non-overlapping changes, sorted by offset, that turn ``old`` into ``new``.

    Lines the diff keeps are never touched (an insertion may sit at a kept line's start).
    Changes that touch each other are merged into one."""
    a, b = split_keepends(old), split_keepends(new)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    changes: list[TextChange] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i2 - i1 == j2 - j1:  # a changed line pair at a time: each refined on its own
            pairs = [(starts[i], a[i], b[j]) for i, j in zip(range(i1, i2), range(j1, j2))]
        else:
            pairs = [(starts[i1], "".join(a[i1:i2]), "".join(b[j1:j2]))]
        for offset, before, after in pairs:
            change = _refined(offset, before, after)
            if change is not None:
                changes.append(change)
    return _merged(changes)


def apply(old: str, changes: list[TextChange]) -> str:
    """``old`` with ``changes`` applied, from the last to the first.

    Raises ValueError when a change lies outside ``old`` or two changes overlap."""
    ordered = sorted(changes, key=lambda c: c.start)
    previous_end = 0
    for change in ordered:
        if not 0 <= change.start <= change.end <= len(old):
            raise ValueError(f"The change {change} lies outside the text of {len(old)} characters.")
        if change.start < previous_end:
            raise ValueError(f"The change {change} overlaps the change before it.")
        previous_end = change.end
    text = old
    for change in reversed(ordered):
        text = text[: change.start] + change.text + text[change.end :]
    return text


def _refined(offset: int, before: str, after: str) -> TextChange | None:
    """The change of ``before`` into ``after`` (at ``offset``) without their common prefix and
    suffix; None when they are equal. A ``\\r\\n`` is never split: no client can name the
    position between its two characters."""
    if before == after:
        return None
    limit = min(len(before), len(after))
    prefix = 0
    while prefix < limit and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    if prefix and before[prefix - 1] == "\r" and before[prefix : prefix + 1] == "\n":
        prefix -= 1
    cut = len(before) - suffix
    if suffix and cut and before[cut - 1] == "\r" and before[cut] == "\n":
        suffix -= 1
    return TextChange(offset + prefix, offset + len(before) - suffix, after[prefix : len(after) - suffix])


def _merged(changes: list[TextChange]) -> list[TextChange]:
    """``changes`` (sorted, disjoint) with those that touch each other joined."""
    out: list[TextChange] = []
    for change in changes:
        if out and out[-1].end == change.start:
            last = out.pop()
            change = TextChange(last.start, change.end, last.text + change.text)
        out.append(change)
    return out
