"""Sampler specs (a preset, ``gemma_lsp.config.sampling``) as the request fields of an
OpenAI-compatible server.

``temperature``, ``top_p``, ``frequency_penalty``, ``presence_penalty``, ``seed`` and
``logit_bias`` are OpenAI's own; ``top_k``, ``min_p``, ``typical_p``, ``repeat_penalty`` and
mirostat are what llama.cpp's server, llama-cpp-python's, vLLM and Ollama accept besides
(each under the names it reads: both are sent where they differ, and a server ignores the
other). A server that rejects a field gets the request again without it, and never again
(``engine/remote.py``). The order of the samplers is the server's own; a preset's order is not.

A llama.cpp server fills in its own defaults for fields left out (top-k 40, min-p 0.05,
temperature 0.8): for those servers, samplers the preset does not have are sent switched off,
so a preset means the same thing there as in-process.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# The fields that switch each extended sampler off, on llama.cpp's servers.
LLAMA_CPP_NEUTRAL = {"top_k": 0, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0, "top_p": 1.0}

# Fields the request cannot do without; every other one may be dropped if a server rejects it.
CORE_FIELDS = frozenset({"model", "prompt", "messages", "max_tokens", "stream"})


def _read(spec: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, Mapping):
        params = dict(spec)
    elif hasattr(spec, "model_dump"):
        params = spec.model_dump()
    else:
        params = {k: v for k, v in vars(spec).items() if not k.startswith("_")}
    return str(params.pop("type", "")), params


def sampling_fields(specs: Iterable[Any], seed: int | None, llama_cpp: bool = False) -> dict[str, Any]:
    """The request fields of a chain of sampler specs (empty: greedy)."""
    fields: dict[str, Any] = dict(LLAMA_CPP_NEUTRAL) if llama_cpp else {}
    random = False
    temperature: float | None = None
    for spec in specs:
        kind, p = _read(spec)
        if kind == "greedy":
            temperature = 0.0
        elif kind == "distribution":
            random = True
        elif kind == "temperature":
            temperature = float(p["temperature"])
        elif kind == "dynamic_temperature":
            temperature = float(p["temperature"])
            if p.get("delta"):  # llama.cpp's names for its entropy-scaled temperature
                fields["dynatemp_range"] = float(p["delta"])
                fields["dynatemp_exponent"] = float(p.get("exponent", 1.0))
        elif kind == "top_k":
            fields["top_k"] = int(p["k"])
        elif kind == "top_p":
            fields["top_p"] = float(p["p"])
        elif kind == "min_p":
            fields["min_p"] = float(p["p"])
        elif kind == "typical":
            fields["typical_p"] = float(p["p"])
        elif kind == "mirostat_v2":
            random = True
            tau, eta = float(p.get("tau", 5.0)), float(p.get("eta", 0.1))
            # llama.cpp's server reads "mirostat", llama-cpp-python's "mirostat_mode".
            fields.update(mirostat=2, mirostat_mode=2, mirostat_tau=tau, mirostat_eta=eta)
        elif kind == "penalties":
            if p.get("repeat", 1.0) != 1.0:
                # llama.cpp's name and vLLM's.
                fields["repeat_penalty"] = fields["repetition_penalty"] = float(p["repeat"])
                fields["repeat_last_n"] = int(p.get("last_n", 64))
            if p.get("frequency"):
                fields["frequency_penalty"] = float(p["frequency"])
            if p.get("presence"):
                fields["presence_penalty"] = float(p["presence"])
        elif kind == "logit_bias":
            # Token ids of the served model's vocabulary; OpenAI's range is -100..100 (-100 bans).
            fields["logit_bias"] = {
                str(token): max(-100.0, min(100.0, -100.0 if math.isinf(bias) else float(bias)))
                for token, bias in p["bias"].items()
            }
    if temperature is None:
        temperature = 1.0 if random else 0.0  # a chain without a selector's randomness is greedy
    fields["temperature"] = temperature
    if random or temperature > 0:
        fields["seed"] = int(seed or 0)
    return fields
