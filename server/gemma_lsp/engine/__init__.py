"""The engine layer: the Backend interface, the llama.cpp backend, the test-model writer and
the EngineManager. The only layer that imports llama_cpp (lazily, in ``llamacpp.py``)."""

from .backend import Backend, EvalResult, ModelInfo, SpecialTokens
from .manager import EngineManager, EngineStats, GenerationLimits, GenerationRequest, GenerationResult

__all__ = [
    "Backend",
    "EngineManager",
    "EngineStats",
    "EvalResult",
    "GenerationLimits",
    "GenerationRequest",
    "GenerationResult",
    "ModelInfo",
    "SpecialTokens",
]
