"""The interface every backend implements: a loaded model that serves generation requests.

The :class:`~gemma_lsp.engine.manager.EngineManager` calls a runtime from its one worker thread
only, so a runtime need not be thread-safe. In-process token-level backends (llama.cpp now,
gemma.cpp later) get their runtime from :class:`~gemma_lsp.engine.tokenloop.TokenLoopRuntime`;
a remote server's runtime would speak HTTP instead. Which runtime a setting names is decided in
``engine/backends.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .backend import ModelInfo
from .request import GenerationRequest, GenerationResult

ProgressCallback = Callable[[str, int], None]  # (message, percentage 0-100); called on the worker


@dataclass
class RunControl:
    """What a runtime gets besides the request: the cancel flag and where its output goes."""

    cancel: threading.Event
    emit: Callable[[bytes], None]  # UTF-8 text, possibly a partial character, in order
    sampled: Callable[[], None]  # called once per token chosen (the cancel-latency statistics)
    between_tokens: Callable[[], None] | None = None  # a chat answer lets waiting completions run here


class Runtime(Protocol):
    info: ModelInfo

    def run(self, request: GenerationRequest, control: RunControl) -> GenerationResult:
        """Generate, emitting text as it comes; the result's ``text`` is left empty.

        Raises :class:`~gemma_lsp.errors.Cancelled` when ``control.cancel`` is set, within one
        token (or one prompt batch); ``queue_ms`` is filled in by the manager.
        """

    def close(self) -> None:
        """Free the model."""
