"""Samplers for steering the random test models into exact outputs (stop tokens, line breaks)."""

from __future__ import annotations


class Scripted:
    """A real sampler that emits a fixed cycle of tokens, whatever the logits say."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens, self.i = tokens, 0

    def sample(self, logits) -> int:
        token = self.tokens[self.i % len(self.tokens)]
        self.i += 1
        return token

    def accept(self, token: int) -> None:
        pass

    def reset(self) -> None:
        self.i = 0
