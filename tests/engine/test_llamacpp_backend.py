"""The llama.cpp backend on real test models: loading, tokens, prefix reuse, abort."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gemma_lsp.config import LlamaCppModelSettings
from gemma_lsp.engine.llamacpp import LlamaCppBackend
from gemma_lsp.engine.testmodel import SPECIAL_TOKENS
from gemma_lsp.errors import Cancelled, ModelUnavailable

CODE = "def add(a, b):\n    return a + b\n\nclass Point:\n    x: int = 0  # ünïcødé → 🎉\n"


def load(path, **kw) -> LlamaCppBackend:
    return LlamaCppBackend.load(LlamaCppModelSettings(path=path, n_ctx=kw.pop("n_ctx", 2048), **kw))


@pytest.mark.parametrize("arch", ["gemma", "gemma2", "gemma3"])
def test_each_gemma_architecture_loads_and_round_trips_text(model_factory, arch):
    backend = load(model_factory(arch))
    try:
        assert backend.info.architecture == arch
        sp = backend.special
        ids = {name: SPECIAL_TOKENS.index(name) for name in SPECIAL_TOKENS}
        assert (sp.bos, sp.eos) == (ids["<bos>"], ids["<eos>"])
        assert sp.end_of_turn == ids["<end_of_turn>"]
        assert (sp.fim_prefix, sp.fim_suffix, sp.fim_middle) == (
            ids["<|fim_prefix|>"], ids["<|fim_suffix|>"], ids["<|fim_middle|>"])
        assert sp.file_separator == ids["<|file_separator|>"]
        tokens = backend.tokenize(CODE)
        assert backend.detokenize(tokens) == CODE  # byte fallback: any text round-trips
        ascii_code = "def add(a, b):\n    return a + b\n"
        assert len(backend.tokenize(ascii_code)) < len(ascii_code) / 2  # real pieces, not bytes
        result = backend.eval([sp.bos, *tokens])
        assert result.logits.shape == (backend.info.n_vocab,)
        assert np.isfinite(result.logits).all()
    finally:
        backend.close()


def test_control_tokens_are_ids_only_when_asked(tiny_model):
    backend = load(tiny_model)
    try:
        fim = backend.special.fim_prefix
        assert backend.tokenize("<|fim_prefix|>", special=True) == [fim]
        assert fim not in backend.tokenize("<|fim_prefix|>")  # file text cannot inject control tokens
        assert backend.detokenize([fim], special=True) == "<|fim_prefix|>"
    finally:
        backend.close()


@pytest.fixture(scope="module")
def pair(tiny_model):
    """Two backends on one model: one reuses its cache, the other always evaluates cold."""
    warm, cold = load(tiny_model), load(tiny_model)
    yield warm, cold
    warm.close()
    cold.close()


def cold_logits(backend: LlamaCppBackend, tokens: list[int]) -> np.ndarray:
    backend.reset()
    result = backend.eval(tokens)
    assert result.tokens_reused == 0
    return result.logits


def test_appended_tokens_reuse_the_prefix_and_match_a_cold_evaluation(pair):
    warm, cold = pair
    prompt = [warm.special.bos, *warm.tokenize(CODE * 8)]
    warm.reset()
    warm.eval(prompt)
    longer = prompt + warm.tokenize("def sub(a, b):")
    result = warm.eval(longer)
    assert result.tokens_reused == len(prompt)
    assert result.tokens_evaluated == len(longer) - len(prompt)
    np.testing.assert_allclose(result.logits, cold_logits(cold, longer), atol=1e-4, rtol=0)


def test_an_edit_in_the_middle_reevaluates_only_from_the_edit(pair):
    warm, cold = pair
    prompt = [warm.special.bos, *warm.tokenize(CODE * 8)]
    warm.reset()
    warm.eval(prompt)
    edit_at = len(prompt) // 2
    edited = prompt[:edit_at] + warm.tokenize("value") + prompt[edit_at + 1 :]
    result = warm.eval(edited)
    assert result.tokens_reused == edit_at
    assert result.tokens_evaluated == len(edited) - edit_at
    np.testing.assert_allclose(result.logits, cold_logits(cold, edited), atol=1e-4, rtol=0)


def test_the_same_prompt_twice_evaluates_one_token(pair):
    warm, _ = pair
    prompt = [warm.special.bos, *warm.tokenize(CODE)]
    warm.reset()
    first = warm.eval(prompt)
    again = warm.eval(prompt)
    assert again.tokens_evaluated == 1
    np.testing.assert_allclose(first.logits, again.logits, atol=1e-4, rtol=0)


class AbortOnCheck:
    """An abort flag that turns on at its n-th check: deterministic mid-decode aborts."""

    def __init__(self, n: int) -> None:
        self.n, self.checks = n, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.n


def test_a_long_prefill_aborts_mid_decode_and_the_context_stays_usable(tiny_model):
    backend = load(tiny_model, n_ctx=4096, n_batch=2048)
    try:
        prompt = [backend.special.bos, *backend.tokenize(CODE * 60)][:4000]
        flag = AbortOnCheck(3)  # 1st: our check before the batch; 2nd+: llama.cpp's callback
        with pytest.raises(Cancelled):
            backend.eval(prompt, abort=flag)
        assert flag.checks >= 3  # llama.cpp itself asked the flag during decode
        assert len(backend.cached_tokens) < len(prompt)
        after = backend.eval(prompt)
        other = load(tiny_model, n_ctx=4096, n_batch=2048)
        try:
            np.testing.assert_allclose(after.logits, other.eval(prompt).logits, atol=1e-4, rtol=0)
        finally:
            other.close()
    finally:
        backend.close()


def test_a_set_abort_flag_stops_before_any_work(tiny_model):
    backend = load(tiny_model)
    try:
        flag = threading.Event()
        flag.set()
        with pytest.raises(Cancelled):
            backend.eval([backend.special.bos, *backend.tokenize(CODE)], abort=flag)
    finally:
        backend.close()


def test_embeddings_have_one_vector_per_text(tiny_model):
    backend = load(tiny_model)
    try:
        vectors = backend.embed(["def add(a, b):", "class Point:"])
        assert vectors.shape == (2, 64)
        assert not np.allclose(vectors[0], vectors[1])
    finally:
        backend.close()


def test_settings_reach_llama_cpp(tiny_model):
    backend = load(tiny_model, n_ctx=1024, n_threads=1, rope_freq_base=20000.0, rope_scaling="yarn")
    try:
        assert backend.n_ctx == 1024
        cparams = backend._llm.context_params
        assert cparams.n_threads == 1
        assert cparams.rope_freq_base == 20000.0
        assert cparams.rope_scaling_type == 2
    finally:
        backend.close()


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "absent.gguf", "does not exist"),
        (lambda d: d, "is a folder"),
        (lambda d: _write(d / "notes.gguf", b"hello, this is not a model"), "is not a GGUF file"),
        (lambda d: _write(d / "cut.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 8 + b"\x05" + b"\x00" * 7 + b"\xff" * 8),
         "not a valid GGUF file"),
    ],
)
def test_a_bad_model_path_gives_one_sentence_naming_it(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(ModelUnavailable) as err:
        load(path)
    message = str(err.value)
    assert expected in message and str(path) in message
    assert message.endswith(".") and "\n" not in message


def test_a_non_gemma_gguf_is_refused_by_name(tmp_path):
    import gguf

    path = tmp_path / "llama.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelUnavailable, match=r"is a 'llama' model; gemma-lsp runs Gemma models"):
        load(path)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("edit_back", [3, 700])
def test_without_a_full_swa_cache_reuse_is_exact_or_refused(tiny_model, edit_back):
    """gemma3 keeps only a 512-token window in its sliding-window layers (swa_full off)."""
    warm = load(tiny_model, n_ctx=4096, swa_full=False)
    cold = load(tiny_model, n_ctx=4096, swa_full=True)
    try:
        prompt = [warm.special.bos, *warm.tokenize(CODE * 40)][:1500]
        warm.eval(prompt)
        at = len(prompt) - edit_back
        edited = prompt[:at] + warm.tokenize("value") + prompt[at + 1 :]
        result = warm.eval(edited)
        if edit_back < 100:
            assert result.tokens_reused == at and warm.full_reevaluations == 0
        else:  # the window before the edit was evicted: evaluate everything again
            assert result.tokens_reused == 0 and warm.full_reevaluations == 1
        np.testing.assert_allclose(result.logits, cold_logits(cold, edited), atol=1e-4, rtol=0)
    finally:
        warm.close()
        cold.close()
