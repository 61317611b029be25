"""Token healing: the sorted piece table, and the token loop that spells the backed-up text first."""

from __future__ import annotations

import numpy as np

from gemma_lsp.engine import GenerationLimits, GenerationRequest, HealedTokens, TokenPrompt
from gemma_lsp.engine.pieces import PieceTable
from gemma_lsp.sampling import Greedy

VOCAB = [b"", b"f", b"fi", b"fie", b"field", b"fields", b"fig", b"x", b"ld", b"", b"\xff", b"\xff\xfe", b"e"]


def ids(table: PieceTable, text: bytes) -> set[int]:
    return {int(i) for i in table.candidates(text)}


def test_candidates_extend_the_text_or_spell_a_part_of_it():
    table = PieceTable(VOCAB)
    assert ids(table, b"fie") == {3, 4, 5, 1, 2}  # fie, field, fields; f and fi spell a start of it
    assert ids(table, b"fiel") == {4, 5, 1, 2, 3}
    assert ids(table, b"x") == {7}
    assert ids(table, b"\xff") == {10, 11}  # the top byte: no "next prefix" overflow
    assert ids(table, b"q") == set()
    assert 0 not in ids(table, b"f") and 9 not in ids(table, b"f")  # control tokens never


def test_the_mask_keeps_only_candidates():
    table = PieceTable(VOCAB)
    logits = np.arange(len(VOCAB), dtype=np.float32)
    masked = table.mask(logits, b"fiel")
    assert set(np.flatnonzero(np.isfinite(masked))) == {1, 2, 3, 4, 5}
    assert masked[5] == 5.0 and np.all(logits == np.arange(len(VOCAB)))  # a new array


class Recording(Greedy):
    def __init__(self, script: list[int]) -> None:
        super().__init__()
        self.script, self.seen = script, []

    def sample(self, logits):
        self.seen.append(np.isfinite(logits).sum())
        return self.script[len(self.seen) - 1]


async def test_the_backed_up_token_is_spelled_first_and_not_part_of_the_answer(manager):
    backend = manager._runtime.backend
    sp = backend.special
    prompt = [sp.bos, *backend.tokenize("value = fie")]
    healed = backend.token_bytes(prompt[-1])
    assert healed  # the word's last piece
    then = backend.tokenize("ld_name")
    sampler = Recording([prompt[-1], *then, sp.eos])
    request = GenerationRequest(
        TokenPrompt(lambda tok: HealedTokens(prompt, len(prompt) - 1)), sampler, GenerationLimits(max_tokens=len(then))
    )
    result = await manager.generate(request)
    assert result.text == "ld_name"  # the healed piece was generated again, not shown again
    assert result.prompt_tokens == len(prompt) - 1
    assert sampler.seen[0] == len(manager._runtime.pieces.candidates(healed)) < backend.n_vocab
    assert all(n == backend.n_vocab for n in sampler.seen[1:])  # no constraint once it is spelled out
