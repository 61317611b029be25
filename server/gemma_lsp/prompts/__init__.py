"""Prompt templates from the prompts/ folder: loading, checking, hot reload, rendering.

Imports config only; memories reach a template through a ``ContextProvider`` callable.
"""

from .library import MEMORY_VARIABLES, VARIABLES, PromptError, PromptLibrary, Template, builtin_prompt_dir
from .render import ContextProvider, PromptInputs, RenderedPrompt, language_for, render_prompt

__all__ = [
    "MEMORY_VARIABLES", "VARIABLES", "ContextProvider", "PromptError", "PromptInputs", "PromptLibrary",
    "RenderedPrompt", "Template", "builtin_prompt_dir", "language_for", "library_for", "render_prompt",
]  # fmt: skip


def library_for(settings) -> PromptLibrary:
    """The library of ``[prompts] dirs`` followed by the built-in folder, with the render limits."""
    return PromptLibrary(
        [*settings.dirs, builtin_prompt_dir()], timeout_seconds=settings.render_timeout_seconds,
        memory_mb=settings.render_memory_mb, max_chars=settings.max_prompt_chars,
    )  # fmt: skip
