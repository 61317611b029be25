"""Completion: FIM prompts in tokens and the suggestion path from a document to the engine."""

from .fim import FimPromptBuilder, FimWindows
from .service import CompletionService, Suggestion

__all__ = ["CompletionService", "FimPromptBuilder", "FimWindows", "Suggestion"]
