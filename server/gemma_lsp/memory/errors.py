"""The memory package's one error; it subclasses the project's base error."""

from __future__ import annotations

from gemma_lsp.errors import GemmaLspError


class MemoryUnavailable(GemmaLspError):
    """The memory backend (Redis, or the SQLite file) cannot be reached or used right now."""
