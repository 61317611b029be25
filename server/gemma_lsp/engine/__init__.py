"""The engine layer: one interface for every backend, the EngineManager that serves it, the
in-process llama.cpp backend and the test-model writer. The only layer that imports llama_cpp
(lazily, in ``llamacpp.py``, ``native.py``, ``native_sampling.py`` and ``embedder.py``)."""

from .backend import Backend, EvalResult, ModelInfo, SpecialTokens
from .manager import EngineManager, EngineStats
from .request import (
    ChatMessage,
    ChatPrompt,
    GenerationLimits,
    GenerationRequest,
    GenerationResult,
    HealedTokens,
    Prompt,
    SamplingSpec,
    TextPrompt,
    TokenPrompt,
    Tokenizer,
)
from .runtime import ProgressCallback, RunControl, Runtime

__all__ = [
    "Backend",
    "ChatMessage",
    "ChatPrompt",
    "EngineManager",
    "EngineStats",
    "EvalResult",
    "GenerationLimits",
    "GenerationRequest",
    "GenerationResult",
    "HealedTokens",
    "ModelInfo",
    "ProgressCallback",
    "Prompt",
    "RunControl",
    "Runtime",
    "SamplingSpec",
    "SpecialTokens",
    "TextPrompt",
    "TokenPrompt",
    "Tokenizer",
]
