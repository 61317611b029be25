"""The interface of one step of a sampler chain (llama.cpp's ``llama_sampler``)."""

from __future__ import annotations

from .candidates import Candidates


class Stage:
    """Narrows or rescales the candidates, or (a *selector*) picks the token.

    Parameters are fixed at construction; state that changes while generating (Mirostat's mu,
    a random generator, the recent tokens of the penalties) is reset by :meth:`reset`, which the
    chain calls at the start of every request.
    """

    name = "stage"
    selects = False  # True for stages that set ``candidates.selected``
    # True for stages that validate a dense set's logits themselves (see SamplerChain.apply)
    validates_input = False

    def apply(self, candidates: Candidates) -> None:
        raise NotImplementedError

    def accept(self, token: int) -> None:
        """The token finally emitted at this step (after every stage has run)."""

    def reset(self) -> None:
        """Forget per-sequence state."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
