"""Which runtime ``model.backend`` names, loaded on the engine's worker thread.

Adding a backend is a new module with a loader and one line here; nothing else changes.
Loaders import their libraries lazily, so ``gemma-lsp --help`` and the config tools start fast.
"""

from __future__ import annotations

from collections.abc import Callable

from gemma_lsp.config import LlamaCppModelSettings, ModelSettings, OpenAIModelSettings
from gemma_lsp.errors import ModelUnavailable

from .runtime import ProgressCallback, Runtime


def _llama_cpp(settings: LlamaCppModelSettings, progress: ProgressCallback) -> Runtime:
    from .llamacpp import LlamaCppBackend
    from .tokenloop import TokenLoopRuntime

    return TokenLoopRuntime(LlamaCppBackend.load(settings, progress))


def _openai(settings: OpenAIModelSettings, progress: ProgressCallback) -> Runtime:
    from .remote import load_remote

    return load_remote(settings, progress)


LOADERS: dict[str, Callable[[ModelSettings, ProgressCallback], Runtime]] = {
    "llama.cpp": _llama_cpp,
    "openai": _openai,
}


def load_runtime(settings: ModelSettings, progress: ProgressCallback) -> Runtime:
    """The runtime of ``settings.backend`` with the model loaded; :class:`ModelUnavailable` if not."""
    loader = LOADERS.get(settings.backend)
    if loader is None:
        raise ModelUnavailable(f"model.backend {settings.backend!r} is not one of: {', '.join(LOADERS)}.")
    return loader(settings, progress)
