"""Suggestions served without the engine: an LRU of past answers and type-ahead.

- :class:`CompletionCache` maps what the prompt is made of (the text window before the
  cursor, the window after it, and the generation settings) to the raw text the model wrote.
  Typing a character and deleting it again, or asking twice at the same place, costs nothing.
- :class:`TypeAhead` remembers the last suggestion shown per document. When the user types the
  first characters of that suggestion, the rest is still the right answer: it is served at
  once, with the range moved to the new cursor.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

# Characters per token used to size the text windows of the cache key: generous, so that two
# prompts with the same key really are the same prompt.
_KEY_CHARS_PER_TOKEN = 8


def prompt_key(text: str, offset: int, prefix_tokens: int, suffix_tokens: int, settings: tuple) -> str:
    """A digest of everything the prompt is built from."""
    before = text[max(0, offset - prefix_tokens * _KEY_CHARS_PER_TOKEN) : offset]
    after = text[offset : offset + suffix_tokens * _KEY_CHARS_PER_TOKEN]
    h = hashlib.blake2b(digest_size=16)
    for part in (before, "\x00", after, "\x00", repr(settings)):
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class CompletionCache:
    """A bounded LRU of raw model output by prompt key."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> str | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, raw: str) -> None:
        self._items[key] = raw
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


@dataclass(frozen=True)
class _Shown:
    before: str  # the document up to the cursor when the suggestion was made
    after: str  # the document from the cursor on
    suggestion: str  # the text that was offered at the cursor


class TypeAhead:
    """The last suggestion per document, to serve its remainder while the user types it."""

    def __init__(self) -> None:
        self._shown: dict[str, _Shown] = {}
        self.hits = 0

    def remember(self, uri: str, text: str, offset: int, suggestion: str) -> None:
        self._shown[uri] = _Shown(text[:offset], text[offset:], suggestion)

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)

    def remainder(self, uri: str, text: str, offset: int) -> str | None:
        """What is left of the shown suggestion if the user typed its beginning, else None."""
        shown = self._shown.get(uri)
        if shown is None:
            return None
        start = len(shown.before)
        typed = offset - start
        if typed <= 0 or typed >= len(shown.suggestion):
            return None
        if not text.startswith(shown.before) or not text.endswith(shown.after):
            return None
        if len(text) != start + typed + len(shown.after):
            return None
        if text[start:offset] != shown.suggestion[:typed]:
            return None
        self.hits += 1
        return shown.suggestion[typed:]
