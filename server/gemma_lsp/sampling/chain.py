"""A sampler chain: stages run in order over one candidate set; the last one picks the token."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .candidates import Candidates, Workspace
from .temperature import TemperatureScaling
from .stage import Stage
from .truncation import MinP, TopByLogit, TopK, TopP


class SamplerChain(Stage):
    """llama.cpp's sampler chain: itself a stage (so chains nest) and a complete sampler.

    As a sampler it implements the engine's protocol: :meth:`sample` turns one step's logits
    (float32, shape ``(n_vocab,)``, never modified) into a token id, :meth:`accept` reports the
    emitted token to every stage and :meth:`reset` starts a new sequence.

    Consecutive top-k / top-p / min-p stages are evaluated together (:class:`TopByLogit`), which
    gives the same tokens as running them one after the other, faster.
    """

    name = "chain"

    def __init__(self, stages: Sequence[Stage]) -> None:
        stages = list(stages)
        if not stages:
            raise ValueError("a sampler chain needs at least one stage")
        for position, stage in enumerate(stages[:-1]):
            if stage.selects:
                raise ValueError(f"stage {position} ({stage.name}) selects the token, so it must be last")
        self.stages = stages
        self.selects = stages[-1].selects
        self._plan = _fuse_top_by_logit(stages)
        # A pending temperature costs nothing; the stage after it sees the logits first.
        first = next((s for s in self._plan if not isinstance(s, TemperatureScaling)), self._plan[-1])
        self._first_validates = first.validates_input and not isinstance(first, SamplerChain)

    def sample(self, logits: np.ndarray) -> int:
        if not self.selects:
            raise ValueError("this chain does not end with a selector (greedy, distribution, mirostat_v2)")
        logits = np.asarray(logits)
        n = int(logits.shape[0]) if logits.ndim == 1 else 0
        c = Candidates(logits, Workspace.shared(n) if n else None)
        self.apply(c)
        assert c.selected is not None
        return c.selected

    def apply(self, candidates: Candidates) -> None:
        if not self._first_validates:
            candidates.max_logit()  # validate once: NaN or +inf anywhere is an error naming the token
        for stage in self._plan:
            stage.apply(candidates)

    def accept(self, token: int) -> None:
        for stage in self.stages:
            stage.accept(token)

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def __repr__(self) -> str:
        return f"SamplerChain({self.stages!r})"


def _fuse_top_by_logit(stages: list[Stage]) -> list[Stage]:
    plan: list[Stage] = []
    run: list[TopK | TopP | MinP] = []
    for stage in stages + [None]:  # type: ignore[operator]
        if isinstance(stage, (TopK, TopP, MinP)):
            run.append(stage)
            continue
        if run:
            plan.append(run[0] if len(run) == 1 else TopByLogit(run))
            run = []
        if stage is not None:
            plan.append(stage)
    return plan
