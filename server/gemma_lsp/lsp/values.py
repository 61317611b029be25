"""Plain Python values from what pygls hands over for untyped JSON (namedtuple-like objects)."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """Dicts, lists and scalars all the way down."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
