"""Strict scalar types for settings: a number is never read from a boolean or a string.

Pydantic's lax mode turns ``true`` into 1 and ``"64"`` into 64; for settings that hides a
mistake (``max_tokens = true`` is not a number of tokens). An integer setting takes integers
only, a float setting integers or floats, a boolean setting ``true`` / ``false`` only. Every
numeric setting also has both bounds (``ge``/``gt`` and ``le``/``lt``): ``tests/config`` walks the
schema and checks it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Strict

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]

__all__ = ["Bool", "Float", "Int"]
