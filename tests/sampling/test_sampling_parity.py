"""Parity with llama.cpp's native samplers (llama-cpp-python 0.3.36) on the same logits.

Top-k, min-p and greedy must match exactly. Top-p and typical-p must match exactly except where
llama.cpp's float32 running sums put it on the other side of the cut; there the test proves the
disagreement is within llama.cpp's own rounding (see ``assert_same_up_to_f32_rounding``) and that
our set is the exact one.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from sampling_reference import (  # noqa: E402
    assert_llama_cpp_differs_only_by_float32,
    exact_min_p,
    exact_top_k,
    exact_top_p,
    exact_top_p_order,
    exact_typical,
    exact_typical_order,
    exact_dynamic_temperature,
    llama_f32_dynamic_temperature,
    llama_f32_top_p,
    llama_f32_typical,
    native_kept,
    our_kept,
)

from gemma_lsp.bench.sampling import make_logits  # noqa: E402
from gemma_lsp.engine.native import silence_llama_logs  # noqa: E402
from gemma_lsp.engine.native_sampling import NativeChain  # noqa: E402
from gemma_lsp.config.sampling import (  # noqa: E402
    DynamicTemperatureSpec,
    GreedySpec,
    MinPSpec,
    MirostatV2Spec,
    TemperatureSpec,
    TopKSpec,
    TopPSpec,
    TypicalSpec,
)
from gemma_lsp.sampling import (  # noqa: E402
    Candidates,
    DynamicTemperature,
    MinP,
    MirostatV2,
    TemperatureScaling,
    build_sampler,
)

GEMMA3_VOCAB = 262_144


def _synthetic(vocab: int) -> list[tuple[str, np.ndarray]]:
    return [(f"{shape}-{seed}", make_logits(shape, vocab, seed=seed)) for shape in ("peaked", "flat") for seed in (1, 2)]


SYNTHETIC = {vocab: _synthetic(vocab) for vocab in (2, 10, 1000, 32_000, GEMMA3_VOCAB)}


def _cases(vocabs):
    return [pytest.param(logits, id=f"{vocab}-{name}") for vocab in vocabs for name, logits in SYNTHETIC[vocab]]


@pytest.fixture(scope="module")
def model_logits(model_factory) -> list[np.ndarray]:
    """Next-token logits of the random-weight Gemma 3 test models (262,144 and default vocabularies)."""
    silence_llama_logs()
    vectors = []
    for vocab_size in (None, GEMMA3_VOCAB):
        path = model_factory("gemma3", "tiny", vocab_size)
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=False)
        n_vocab = llm.n_vocab()
        for prompt in (b"def add(a, b):\n    return", b"import numpy as"):
            llm.reset()
            llm.eval(llm.tokenize(prompt, add_bos=True))
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,)).copy()
            vectors.append(logits)
            vectors.append(logits * np.float32(6.0))  # a sharper (peaked) version of the same
        llm.close()
    return vectors


ALL_VOCABS = (2, 10, 1000, 32_000, GEMMA3_VOCAB)


@pytest.mark.parametrize("logits", _cases(ALL_VOCABS))
@pytest.mark.parametrize("k", [1, 5, 40, 1000])
def test_top_k_keeps_the_same_tokens_as_llama_cpp(logits, k):
    ours = our_kept([TopKSpec(k=k)], logits)
    assert np.array_equal(ours, native_kept([TopKSpec(k=k)], logits))
    assert np.array_equal(ours, exact_top_k(logits, k))


@pytest.mark.parametrize("logits", _cases(ALL_VOCABS))
@pytest.mark.parametrize("p", [0.01, 0.05, 0.3])
def test_min_p_keeps_the_same_tokens_as_llama_cpp(logits, p):
    ours = our_kept([MinPSpec(p=p)], logits)
    assert np.array_equal(ours, native_kept([MinPSpec(p=p)], logits))
    assert np.array_equal(ours, exact_min_p(logits, p))


@pytest.mark.parametrize("logits", _cases(ALL_VOCABS))
@pytest.mark.parametrize("p", [0.5, 0.9, 0.95])
def test_top_p_keeps_the_same_tokens_as_llama_cpp(logits, p):
    _check_mass_cut(TopPSpec(p=p), logits, exact_top_p, exact_top_p_order, llama_f32_top_p)


@pytest.mark.parametrize("logits", _cases(ALL_VOCABS))
@pytest.mark.parametrize("p", [0.5, 0.95])
def test_typical_keeps_the_same_tokens_as_llama_cpp(logits, p):
    _check_mass_cut(TypicalSpec(p=p), logits, exact_typical, exact_typical_order, llama_f32_typical)


def _check_mass_cut(spec, logits, exact_of, order_of, llama_f32_of):
    """Top-p / typical: our set is the exact one (unless the cut is within float32 resolution of
    p); llama.cpp's is the same, or differs only through its float32 running sums."""
    ours = our_kept([spec], logits)
    exact = exact_of(logits, spec.p)
    if not np.array_equal(ours, exact):
        order, exact_cum = order_of(logits)
        rank = np.empty(order.shape[0], dtype=np.int64)
        rank[order] = np.arange(order.shape[0])
        ranks = rank[np.setxor1d(ours, exact)]
        window = exact_cum[max(int(ranks.min()) - 1, 0) : int(ranks.max()) + 1]
        assert np.abs(window - spec.p).min() < 1e-6, "our cut is not the exact one"
        return
    assert_llama_cpp_differs_only_by_float32(ours, native_kept([spec], logits), exact, llama_f32_of(logits, spec.p))


def test_top_p_and_typical_on_the_test_model_logits(model_logits):
    for logits in model_logits:
        _check_mass_cut(TopPSpec(p=0.9), logits, exact_top_p, exact_top_p_order, llama_f32_top_p)
        _check_mass_cut(TypicalSpec(p=0.9), logits, exact_typical, exact_typical_order, llama_f32_typical)


def test_top_k_and_min_p_on_the_test_model_logits(model_logits):
    for logits in model_logits:
        for spec in (TopKSpec(k=40), MinPSpec(p=0.05), MinPSpec(p=0.5)):
            assert np.array_equal(our_kept([spec], logits), native_kept([spec], logits))


def test_a_chain_of_filters_keeps_the_same_tokens_as_llama_cpp(model_logits):
    chains = [
        [TopKSpec(k=40), MinPSpec(p=0.05)],
        [TopKSpec(k=200), TopPSpec(p=0.9), MinPSpec(p=0.02)],
        [MinPSpec(p=0.05), TopKSpec(k=10)],
    ]
    vectors = list(model_logits) + [logits for _, logits in SYNTHETIC[GEMMA3_VOCAB] + SYNTHETIC[1000]]
    for logits in vectors:
        for specs in chains:
            assert np.array_equal(our_kept(specs, logits), native_kept(specs, logits)), specs


@pytest.mark.parametrize("logits", _cases((10, 1000, GEMMA3_VOCAB)))
def test_greedy_picks_the_same_token_as_llama_cpp(logits):
    native = NativeChain([GreedySpec()], logits.shape[0])
    assert build_sampler([GreedySpec()]).sample(logits) == native.sample(logits)
    tied = logits.copy()
    tied[[3, 1]] = tied.max() + 1  # a tie for the top: both take the lowest id
    assert build_sampler([GreedySpec()]).sample(tied) == native.sample(tied) == 1
    native.close()


def _native_dynamic_temperature(specs, logits) -> float:
    """llama.cpp does not report its dynamic temperature: read it back from the scaled logits."""
    native = NativeChain(specs, logits.shape[0], add_selector=False)
    data = native.apply(logits)
    ids, scaled = data["id"].astype(np.int64), data["logit"].astype(np.float64)
    original = logits[ids].astype(np.float64)
    usable = np.abs(original) > 0.5
    native.close()
    return float(np.median(original[usable] / scaled[usable]))


@pytest.mark.parametrize("logits", _cases((10, 1000, 32_000, GEMMA3_VOCAB)))
@pytest.mark.parametrize("delta,exponent", [(0.5, 1.0), (0.3, 2.0), (1.0, 0.5)])
def test_dynamic_temperature_matches_llama_cpp(logits, delta, exponent):
    """The effective temperature: ours is the exact one; llama.cpp's equals it up to its float32
    entropy sum (which, at 262,144 tokens, drops the bulk's share: ~1e-3 relative when peaked)."""
    spec = DynamicTemperatureSpec(temperature=1.0, delta=delta, exponent=exponent)
    for prefix in ([], [MinPSpec(p=0.05)]):
        native_t = _native_dynamic_temperature(prefix + [spec], logits)
        stage = DynamicTemperature(1.0, delta, exponent)
        c = Candidates(logits)
        for p in prefix:
            MinP(p.p).apply(c)
        # the candidates the temperature is computed over (without materialising a dense set)
        kept = c.token_ids().copy() if prefix else np.arange(logits.shape[0])
        stage.apply(c)
        exact = exact_dynamic_temperature(logits[kept], 1.0, delta, exponent)
        llama_f32 = llama_f32_dynamic_temperature(logits[kept], 1.0, delta, exponent)
        assert stage.last_temperature == pytest.approx(exact, rel=1e-6)
        assert native_t == pytest.approx(llama_f32, rel=2e-5)
        assert stage.last_temperature == pytest.approx(native_t, rel=2e-5 + 2 * abs(exact - llama_f32) / exact)


def _native_mu(native: NativeChain, index: int) -> float:
    """Mirostat's mu, read from llama.cpp's sampler state {seed, seed_cur, tau, eta, mu, ...}."""
    sampler = llama_cpp.llama_sampler_chain_get(native._chain, index)
    context = sampler.contents.ctx
    return ctypes.c_float.from_address(context + 16).value


@pytest.mark.parametrize("vocab", [1000, 32_000, GEMMA3_VOCAB])
@pytest.mark.parametrize("shape", ["peaked", "flat"])
def test_mirostat_v2_mu_follows_llama_cpp_for_the_same_chosen_tokens(vocab, shape):
    specs = [TemperatureSpec(temperature=0.8), MirostatV2Spec(tau=5.0, eta=0.1)]
    native = NativeChain(specs, vocab, seed=7)
    ours = MirostatV2(tau=5.0, eta=0.1)
    assert ours.mu == pytest.approx(_native_mu(native, 1))
    for step in range(12):
        logits = make_logits(shape, vocab, seed=100 + step)
        token = native.sample(logits)  # llama.cpp draws; we replay its choice
        c = Candidates(logits)
        TemperatureScaling(0.8).apply(c)
        ours.truncate(c)
        ids = c.token_ids()
        assert token in ids, "llama.cpp chose a token our truncation removed"
        weights = np.exp(c.logits.astype(np.float64) - c.max_logit())
        ours.observe(float(weights[np.flatnonzero(ids == token)[0]] / weights.sum()))
        assert ours.mu == pytest.approx(_native_mu(native, 1), abs=2e-4 if vocab > 10_000 else 1e-5), step
    native.close()
