"""Errors raised by the samplers."""

from __future__ import annotations

from gemma_lsp.errors import GemmaLspError


class InvalidLogits(GemmaLspError, ValueError):
    """The logits cannot be sampled from: a NaN or +inf (named by token id), or every token banned."""

    def __init__(self, message: str, token: int | None = None) -> None:
        super().__init__(message)
        self.token = token


class InvalidSamplerSpec(GemmaLspError, ValueError):
    """A sampler chain description names an unknown sampler or gives it a bad parameter."""
