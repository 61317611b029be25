"""A template's message for one request: the editor's inputs plus the workspace's memories.

``render_prompt`` asks the memory side for ``rag_context`` and ``rag_recent`` only when the
template uses them, through a ``ContextProvider`` (``MemoryService.context_for`` is one), so this
package never imports memory/. The query for retrieval is the question and the selection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from gemma_lsp.languages import language_for_path

from .library import PromptLibrary


def language_for(path: str) -> str:
    """The LSP language id for a file name ('' when unknown), for callers without an editor (the CLI)."""
    language = language_for_path(path)
    return language.id if language is not None else ""


# (query, rag budget, recent budget, exclude=(uri, first line, last line) 0-based or None,
#  [exclude_tags=tags whose memories to leave out]) -> {"rag_context": str, "rag_recent": str}
ContextProvider = Callable[..., Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class PromptInputs:
    selection: str = ""
    question: str = ""
    path: str = ""
    language: str = ""
    start_line: int = 0  # 1-based; 0 = no selection
    end_line: int = 0
    uri: str = ""  # the document the selection is in: its overlapping memories are not repeated
    conversation: str = ""  # a chat session: its turns are in the prompt already, not repeated as memories

    def shown(self) -> tuple[str, int, int] | None:
        """The document lines the prompt already shows (0-based, inclusive), for the context provider."""
        if not self.uri or self.start_line <= 0:
            return None
        return self.uri, self.start_line - 1, max(self.start_line, self.end_line) - 1

    def lines(self) -> str:
        if self.start_line <= 0:
            return ""
        if self.end_line > self.start_line:
            return f"lines {self.start_line}-{self.end_line}"
        return f"line {self.start_line}"

    def query(self) -> str:
        """What memories are retrieved for: the question, then the selection."""
        return "\n".join(part for part in (self.question.strip(), self.selection.strip()) if part)


@dataclass(frozen=True)
class RenderedPrompt:
    name: str
    path: str  # the template file used
    text: str
    rag_context: str
    rag_recent: str
    context_ms: float  # time spent retrieving memories

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def render_prompt(
    library: PromptLibrary,
    name: str,
    inputs: PromptInputs,
    context: ContextProvider | None = None,
    *,
    rag_budget_tokens: int = 1024,
    recent_budget_tokens: int = 256,
) -> RenderedPrompt:
    """Render template ``name``; its front matter's budgets override the given defaults.

    Raises :class:`~gemma_lsp.prompts.library.PromptError` for a missing or broken template.
    Without a ``context`` provider (no memories) the memory variables are empty.
    """
    template = library.get(name)
    blocks = {"rag_context": "", "rag_recent": ""}
    started = time.perf_counter()
    query = inputs.query()
    if context is not None and template.uses_memories and query:
        rag = template.rag_budget_tokens if template.rag_budget_tokens is not None else rag_budget_tokens
        recent = template.recent_budget_tokens if template.recent_budget_tokens is not None else recent_budget_tokens
        extra = {"exclude_tags": (f"session:{inputs.conversation}",)} if inputs.conversation else {}
        blocks.update(await context(query, rag, recent, exclude=inputs.shown(), **extra))
    context_ms = (time.perf_counter() - started) * 1000
    values = {**asdict(inputs), "selection": inputs.selection.rstrip("\r\n"), "lines": inputs.lines(), **blocks}
    text = await asyncio.to_thread(library.render_template, template, values)  # in a worker, with a deadline
    return RenderedPrompt(name, str(template.path), text, blocks["rag_context"], blocks["rag_recent"], context_ms)
