"""llama.cpp's own sampler chain over bare logits: the reference our numpy samplers are held to.

The seam through which the sampling benchmark (``bench/sampling.py``) and the parity tests reach
llama.cpp's samplers without importing llama_cpp themselves (only engine/ imports it).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from .native import silence_llama_logs


TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


class NativeChain:
    """llama.cpp's sampler chain (via llama-cpp-python) applied to logits without a model.

    Built from the same specs as ours (``distribution`` is appended if the last spec is not a
    selector, unless ``add_selector`` is false). Each call fills a ``llama_token_data`` array from the
    logits (ids 0..n-1, p = 0, as ``llama_sampler_sample`` does) and runs ``llama_sampler_apply``.
    """

    def __init__(self, specs: list[Any], n_vocab: int, seed: int = 0, add_selector: bool = True) -> None:
        import llama_cpp

        silence_llama_logs()
        self._llama = llama_cpp
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self._chain = llama_cpp.llama_sampler_chain_init(params)
        self._keep: list[Any] = []
        for spec in specs:
            llama_cpp.llama_sampler_chain_add(self._chain, self._make(spec, n_vocab, seed))
        last = specs[-1].type if specs else None
        if add_selector and last not in ("greedy", "distribution", "mirostat_v2"):
            llama_cpp.llama_sampler_chain_add(self._chain, llama_cpp.llama_sampler_init_dist(seed))
        self.n_vocab = n_vocab
        self._template = np.zeros(n_vocab, dtype=TOKEN_DATA)
        self._template["id"] = np.arange(n_vocab, dtype=np.int32)
        self._data = np.zeros(n_vocab, dtype=TOKEN_DATA)
        # Plain int32/float32 views: numpy copies structured arrays field by field (~30x slower).
        self._template_words = self._template.view(np.int32).reshape(n_vocab, 3)
        self._data_words = self._data.view(np.int32).reshape(n_vocab, 3)
        self._data_floats = self._data.view(np.float32).reshape(n_vocab, 3)
        self._array = llama_cpp.llama_token_data_array(
            data=self._data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
            size=n_vocab,
            selected=-1,
            sorted=False,
        )
        self._array_ref = ctypes.byref(self._array)

    def _make(self, spec: Any, n_vocab: int, seed: int):
        ll = self._llama
        kind = spec.type
        if kind == "greedy":
            return ll.llama_sampler_init_greedy()
        if kind == "distribution":
            return ll.llama_sampler_init_dist(seed)
        if kind == "temperature":
            return ll.llama_sampler_init_temp(spec.temperature)
        if kind == "dynamic_temperature":
            return ll.llama_sampler_init_temp_ext(spec.temperature, spec.delta, spec.exponent)
        if kind == "top_k":
            return ll.llama_sampler_init_top_k(spec.k)
        if kind == "top_p":
            return ll.llama_sampler_init_top_p(spec.p, spec.min_keep)
        if kind == "min_p":
            return ll.llama_sampler_init_min_p(spec.p, spec.min_keep)
        if kind == "typical":
            return ll.llama_sampler_init_typical(spec.p, spec.min_keep)
        if kind == "mirostat_v2":
            return ll.llama_sampler_init_mirostat_v2(seed, spec.tau, spec.eta)
        if kind == "penalties":
            return ll.llama_sampler_init_penalties(n_vocab, spec.last_n, spec.repeat, spec.frequency, spec.presence)
        if kind == "logit_bias":
            biases = (ll.llama_logit_bias * len(spec.bias))(*[ll.llama_logit_bias(t, b) for t, b in spec.bias.items()])
            self._keep.append(biases)
            return ll.llama_sampler_init_logit_bias(n_vocab, len(spec.bias), biases)
        raise ValueError(f"no native sampler for {kind!r}")

    def fill(self, logits: np.ndarray) -> None:
        """Reset the token data array to every token with its logit (what llama.cpp does per token)."""
        np.copyto(self._data_words, self._template_words)  # ids 0..n-1, p = 0
        self._data_floats[:, 1] = logits
        self._array.size = self.n_vocab
        self._array.selected = -1
        self._array.sorted = False

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Run the chain's ``apply`` on ``logits``; the surviving token data (a view)."""
        self.fill(logits)
        self._llama.llama_sampler_apply(self._chain, self._array_ref)
        return self._data[: self._array.size]

    @property
    def selected_token(self) -> int:
        return int(self._data["id"][self._array.selected])

    def sample(self, logits: np.ndarray) -> int:
        self.apply(logits)
        return self.selected_token

    def accept(self, token: int) -> None:
        self._llama.llama_sampler_accept(self._chain, token)

    def reset(self) -> None:
        self._llama.llama_sampler_reset(self._chain)

    def close(self) -> None:
        if self._chain is not None:
            self._llama.llama_sampler_free(self._chain)
            self._chain = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
