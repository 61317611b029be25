"""Plain Python values from what pygls hands over for untyped JSON (namedtuple-like objects)."""

from __future__ import annotations

from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from gemma_lsp import protocol


def plain(value: Any) -> Any:
    """Dicts, lists and scalars all the way down."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def command_argument(args: tuple, command: str) -> dict[str, Any]:
    """The one object argument of ``workspace/executeCommand`` (``{}`` when there is none),
    validated by the command's model in ``protocol.py``: one ``InvalidParams`` sentence otherwise."""
    if len(args) > 1:
        raise JsonRpcInvalidParams(f"{command} takes one object argument, got {len(args)} arguments.")
    value = plain(args[0]) if args else None
    if command not in protocol.BY_NAME:  # a feature's own command (a plug-in, a test): its own checks
        if value is not None and not isinstance(value, dict):
            raise JsonRpcInvalidParams(f"{command} takes one object argument.")
        return value or {}
    return validated(command, value)


def validated(name: str, value: Any) -> dict[str, Any]:
    """``value`` checked by ``name``'s parameter model, as plain data without the fields left out."""
    try:
        params = protocol.parse(name, value)
    except protocol.InvalidParams as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    return params.model_dump(exclude_unset=True, exclude_none=True)


def selected_text(documents: Any, command: str, uri: str, rng: Any) -> tuple[str, int, int]:
    """The text of ``rng`` in the open document ``uri``, with its first and last lines (1-based)."""
    doc = documents.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"{command}: {uri} is not open.")
    rng = plain(rng)
    try:
        start = lsp.Position(**rng["start"])
        end = lsp.Position(**rng["end"])
    except (KeyError, TypeError, ValueError):
        raise JsonRpcInvalidParams(f"{command}: range must be {{start: {{line, character}}, end: {{line, character}}}}.") from None
    lines = len(doc.line_starts)
    for where, position in (("start", start), ("end", end)):
        if position.line < 0 or position.character < 0 or position.line >= lines:
            raise JsonRpcInvalidParams(
                f"{command}: the range's {where} (line {position.line}) is outside {uri}, which has {lines} lines."
            )
    first, last = doc.offset_at(start), doc.offset_at(end)
    if last < first:
        first, last = last, first
        start, end = end, start
    end_line = end.line - 1 if end.character == 0 and end.line > start.line else end.line
    return doc.text[first:last], start.line + 1, end_line + 1
