"""Edge cases: tiny vocabularies, banned tokens, ties at the cut, min_keep past the vocabulary,
temperature 0, invalid logits, reproducibility, and the engine's use of the sampler."""

from __future__ import annotations

import numpy as np
import pytest

from gemma_lsp.config.sampling import SamplingSettings
from gemma_lsp.errors import GemmaLspError
from gemma_lsp.sampling import (
    Candidates,
    Greedy,
    InvalidLogits,
    LogitBias,
    MinP,
    Penalties,
    SamplerChain,
    Temperature,
    TopK,
    TopP,
    Typical,
    build_sampler,
)
from gemma_lsp.sampling.selection import RandomChoice

PRESETS = SamplingSettings().presets
VOCABS = [1, 7, 5_000, 100_000]


def _chain(name: str, seed: int = 3):
    sampler = build_sampler(PRESETS[name], seed=seed)
    sampler.reset()
    return sampler


def _logits(n: int, seed: int = 0, shape: str = "flat") -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1 if shape == "flat" else 3, n).astype(np.float32)
    return logits


def _kept(stages, logits) -> list[int]:
    c = Candidates(logits)
    SamplerChain(stages).apply(c)
    return sorted(c.token_ids().tolist())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_one_token_vocabulary_always_gives_that_token(name):
    sampler = _chain(name)
    for value in (0.0, -50.0, 80.0):
        token = sampler.sample(np.array([value], dtype=np.float32))
        sampler.accept(token)
        assert token == 0


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("n", VOCABS[1:])
def test_when_every_token_but_one_is_banned_that_one_is_chosen(name, n):
    sampler = _chain(name)
    for allowed in (0, n // 2, n - 1):
        logits = np.full(n, -np.inf, dtype=np.float32)
        logits[allowed] = -3.0
        for _ in range(3):
            token = sampler.sample(logits)
            sampler.accept(token)
            assert token == allowed


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("n", VOCABS[1:])
def test_banned_tokens_are_never_chosen(name, n):
    sampler = _chain(name)
    logits = _logits(n, seed=1)
    banned = np.argsort(logits)[-max(1, n // 2) :]  # ban the most likely half
    logits[banned] = -np.inf
    for _ in range(20):
        token = sampler.sample(logits)
        sampler.accept(token)
        assert np.isfinite(logits[token])


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_token_banned_is_a_clear_error(name):
    with pytest.raises(InvalidLogits, match="every token is banned"):
        _chain(name).sample(np.full(50, -np.inf, dtype=np.float32))


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("n", [7, 100_000])
@pytest.mark.parametrize("bad,word", [(np.nan, "NaN"), (np.inf, r"\+inf")])
def test_nan_or_plus_inf_is_one_error_naming_the_token(name, n, bad, word):
    logits = _logits(n)
    position = n - 2
    logits[position] = bad
    with pytest.raises(InvalidLogits, match=rf"token {position} is {word}") as info:
        _chain(name).sample(logits)
    assert info.value.token == position
    assert isinstance(info.value, GemmaLspError)


def test_minus_inf_is_allowed_anywhere():
    logits = _logits(1000)
    logits[::3] = -np.inf
    for name in PRESETS:
        sampler = _chain(name)
        assert np.isfinite(logits[sampler.sample(logits)])


@pytest.mark.parametrize("n", [10, 50_000])
def test_top_k_cuts_ties_in_favour_of_lower_token_ids(n):
    logits = np.zeros(n, dtype=np.float32)
    logits[[4, 8]] = 2.0
    logits[[1, 3, 6, 9]] = 1.0  # a four-way tie across the cut of k=4
    assert _kept([TopK(4)], logits) == [1, 3, 4, 8]


@pytest.mark.parametrize("n", [10, 50_000])
def test_min_p_keeps_every_token_tied_at_its_threshold(n):
    logits = np.full(n, -10.0, dtype=np.float32)
    logits[[2, 5]] = 3.0
    logits[[1, 7, 9]] = np.float32(3.0) + np.float32(np.log(np.float32(0.5)))  # exactly at the threshold
    assert _kept([MinP(0.5)], logits) == [1, 2, 5, 7, 9]


@pytest.mark.parametrize("n", [4, 60_000])
def test_top_p_cuts_ties_in_favour_of_lower_token_ids(n):
    logits = np.full(n, -np.inf, dtype=np.float32)
    logits[[0, 1, 2, 3]] = 1.0  # four equally likely tokens: p = 0.5 needs two of them
    assert _kept([TopP(0.5)], logits) == [0, 1]
    assert _kept([TopP(0.51)], logits) == [0, 1, 2]


def test_typical_with_a_tie_at_the_cut_is_deterministic():
    logits = np.array([0.0, 1.0, 1.0, 1.0, 2.0], dtype=np.float32)
    first = _kept([Typical(0.5)], logits)
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        c = Candidates.from_arrays(np.array(perm), logits[perm], n_vocab=5)
        SamplerChain([Typical(0.5)]).apply(c)
        assert sorted(c.token_ids().tolist()) == first


@pytest.mark.parametrize("n", [3, 20_000])
def test_min_keep_larger_than_the_vocabulary_keeps_everything(n):
    logits = _logits(n)
    everything = list(range(n))
    assert _kept([TopP(0.01, min_keep=n + 5)], logits) == everything
    assert _kept([MinP(0.99, min_keep=n + 5)], logits) == everything
    assert _kept([Typical(0.01, min_keep=n + 5)], logits) == everything
    assert _kept([TopK(n + 5)], logits) == everything


def test_min_keep_keeps_the_most_likely_tokens():
    logits = np.array([0.0, 5.0, 1.0, 4.0, 2.0], dtype=np.float32)
    assert _kept([MinP(0.99, min_keep=3)], logits) == [1, 3, 4]
    assert _kept([TopP(0.01, min_keep=2)], logits) == [1, 3]


@pytest.mark.parametrize("n", [7, 100_000])
def test_temperature_zero_is_greedy(n):
    logits = _logits(n, seed=5)
    best = int(np.argmax(logits))
    for specs in (
        [{"type": "temperature", "temperature": 0.0}],
        [{"type": "top_k", "k": 50}, {"type": "temperature", "temperature": 0.0}],
        [{"type": "dynamic_temperature", "temperature": 0.0, "delta": 0.0}],
        [{"type": "min_p", "p": 0.05}, {"type": "dynamic_temperature", "temperature": 0.0, "delta": 0.0}],
    ):
        sampler = build_sampler(specs, seed=1)
        assert {sampler.sample(logits) for _ in range(10)} == {best}
    assert Temperature(0.0, seed=4).sample(logits) == Greedy().sample(logits) == best


def test_the_same_seed_and_logits_give_the_same_tokens_and_reset_replays_them():
    vectors = [_logits(50_000, seed=s) for s in range(5)]
    for name in PRESETS:
        a, b = _chain(name, seed=11), _chain(name, seed=11)
        run_a = []
        for logits in vectors:
            token = a.sample(logits)
            a.accept(token)
            run_a.append(token)
        run_b = []
        for logits in vectors:
            token = b.sample(logits)
            b.accept(token)
            run_b.append(token)
        assert run_a == run_b, name
        a.reset()
        replay = []
        for logits in vectors:
            token = a.sample(logits)
            a.accept(token)
            replay.append(token)
        assert replay == run_a, name


def test_different_seeds_give_different_tokens():
    logits = _logits(50_000, seed=2)
    draws = {tuple(_chain("balanced", seed=s).sample(logits) for _ in range(5)) for s in range(5)}
    assert len(draws) > 1


def test_the_callers_logits_are_never_modified():
    logits = _logits(100_000, seed=3)
    before = logits.copy()
    chain = SamplerChain([Penalties(64, 1.3, 0.2, 0.5), LogitBias({5: -np.inf, 7: 3.0}), TopP(0.9), RandomChoice(1)])
    for token in range(64):
        chain.accept(token)
    chain.sample(logits)
    assert np.array_equal(logits, before)


def test_the_engine_may_reuse_one_logits_buffer():
    """The generation loop may refill the same array every step: nothing may be cached across calls."""
    buffer = np.empty(30_000, dtype=np.float32)
    sampler = Greedy()
    chain = build_sampler(PRESETS["completion"], seed=0)
    for step in range(5):
        buffer[:] = _logits(30_000, seed=step)
        assert sampler.sample(buffer) == int(np.argmax(buffer))
        token = chain.sample(buffer)
        assert token in np.argsort(buffer)[-40:]


def test_penalties_follow_llama_cpps_formula():
    logits = np.array([2.0, -2.0, 1.0, 0.5], dtype=np.float32)
    stage = Penalties(last_n=3, repeat=2.0, frequency=0.5, presence=0.25)
    for token in (0, 1, 1, 3):  # 0 falls out of the window of 3
        stage.accept(token)
    c = Candidates(logits)
    stage.apply(c)
    assert c.logits.tolist() == pytest.approx([2.0, -2.0 * 2 - 2 * 0.5 - 0.25, 1.0, 0.5 / 2 - 0.5 - 0.25])
    stage.reset()
    c = Candidates(logits)
    stage.apply(c)
    assert c.logits.tolist() == logits.tolist()


def test_logit_bias_shifts_and_bans():
    logits = np.zeros(10, dtype=np.float32)
    chain = SamplerChain([LogitBias({3: 50.0, 4: -np.inf}), RandomChoice(0)])
    assert {chain.sample(logits) for _ in range(20)} == {3}
    c = Candidates(logits)
    LogitBias({4: -np.inf, 99: 1.0}).apply(c)  # ids past the vocabulary are ignored
    assert c.logits[4] == -np.inf


def test_a_vanishing_temperature_is_greedy_not_an_overflow():
    logits = np.array([6.0, 0.0], dtype=np.float32)  # at temperature 1/8 the entropy is ~1e-19
    for specs in (
        [{"type": "temperature", "temperature": 1e-30}],
        [
            {"type": "temperature", "temperature": 0.125},
            {"type": "dynamic_temperature", "temperature": 1.0, "delta": 1.0, "exponent": 2.0},
        ],
    ):
        sampler = build_sampler(specs, seed=0)
        assert {sampler.sample(logits) for _ in range(5)} == {0}
