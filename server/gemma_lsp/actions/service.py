"""Running a code action that edits: the template rendered for the selection, the model's answer
generated on the chat lane (so the completion cache survives), shaped into code, and turned into
the minimal edits of the selection. "Write tests" inserts its code below the selection instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gemma_lsp.config import ChatSettings
from gemma_lsp.engine import ChatMessage, ChatPrompt, EngineManager, GenerationLimits, GenerationRequest, SamplingSpec
from gemma_lsp.errors import GemmaLspError
from gemma_lsp.prompts import PromptInputs, RenderedPrompt

from .diff import TextChange
from .edits import selection_edits
from .kinds import ActionSpec
from .shaping import code_of, shape_code


class NoChange(GemmaLspError):
    """The model's answer holds no change for the selection."""


class ActionService:
    def __init__(
        self,
        engine: EngineManager,
        render: Callable[[str, PromptInputs], Awaitable[RenderedPrompt]],
        sampling: Callable[[], SamplingSpec],
        settings: Callable[[], ChatSettings],
    ) -> None:
        self._engine = engine
        self._render = render
        self._sampling = sampling
        self._settings = settings

    async def edits(
        self, spec: ActionSpec, document: str, start: int, end: int, language: str, inputs: PromptInputs
    ) -> list[TextChange]:
        """The edits that carry out ``spec`` on ``document[start:end]``; :class:`NoChange` when the
        answer has none, ``OutsideSelection`` when it would touch text outside the selection."""
        rendered = await self._render(spec.template, inputs)
        request = GenerationRequest(
            ChatPrompt((ChatMessage("user", rendered.text),)),
            self._sampling(),
            GenerationLimits(max_tokens=self._settings().max_tokens),
            key=f"action:{inputs.uri}",
            lane="chat",
        )
        answer = (await self._engine.generate(request)).text
        if spec.id == "tests":
            code = "\n".join(code_of(answer, language)).strip("\n")
            if not code.strip() or code.strip() == document[start:end].strip():
                raise NoChange("The model's answer holds no test code (it repeated the selection or was empty).")
            # Below the selection's last line, after a blank line.
            at = end if end > 0 and document[end - 1] == "\n" else (document.find("\n", end) + 1 or len(document))
            lead = "" if document[:at].endswith("\n\n") else ("\n" if document[:at].endswith("\n") else "\n\n")
            return [TextChange(at, at, f"{lead}{code}\n")]
        replacement = shape_code(answer, document[start:end], document, start, end, language)
        if replacement is None:
            raise NoChange(f"The model's answer holds no change for this code ({spec.title.lower()}).")
        return selection_edits(document, start, end, replacement)
