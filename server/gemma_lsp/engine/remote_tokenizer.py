"""Tokenizers for prompts that go to a remote server as text.

A completion prompt is built as token ids by ``completion/fim.py`` (windows sized in tokens,
control tokens placed by id). A remote server takes text, so the remote backend gives the
builder a tokenizer that runs here, with no network round trip per keystroke, and writes the
built ids back as text (:func:`prompt_text`):

- :class:`ApproximateTokenizer` (the default) cuts text into word pieces (at most four letters,
  three digits, one symbol or a run of up to eight spaces) that each stand for about one token
  of a real vocabulary or less: windows come out no larger than their budget in real tokens.
  A piece's id is its UTF-8 bytes read as one integer, so any id turns back into its text and
  nothing is kept between calls. Control tokens have small ids of their own.
- :class:`GgufTokenizer` reads the served model's vocabulary from a GGUF file (or a named model:
  every Gemma 3 size shares gemma3-270m's tokenizer) with llama.cpp, vocabulary only, for exact
  counts and the same FIM tokens the server has.

Document text is never written as a control token: a file that contains ``<|fim_prefix|>``
reaches the server with a zero-width space after its first character (:func:`defuse`), so the
server's tokenizer cannot read it as one.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from gemma_lsp.errors import ModelUnavailable

from .backend import SpecialTokens

# Gemma's control tokens, as the servers' tokenizers parse them in prompt text.
BOS, EOS, START_OF_TURN, END_OF_TURN = "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"
FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FILE_SEPARATOR = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"
FIM_TEXTS = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)
CONTROL_TEXTS = ("<pad>", EOS, BOS, "<unk>", START_OF_TURN, END_OF_TURN, *FIM_TEXTS, FILE_SEPARATOR)

_ZERO_WIDTH_SPACE = "\u200b"
_CONTROL = re.compile("|".join(re.escape(t) for t in CONTROL_TEXTS))


def defuse(text: str) -> str:
    """``text`` with every control token's text broken by a zero-width space after its ``<``."""
    if "<" not in text:
        return text
    return _CONTROL.sub(lambda m: m.group()[0] + _ZERO_WIDTH_SPACE + m.group()[1:], text)


class ApproximateTokenizer:
    """Word pieces as tokens (see the module docstring); thread-safe, nothing to load."""

    # At most one token each in any code vocabulary worth the name (Gemma's has 262,144 pieces).
    _PIECES = re.compile(r"[A-Za-z]{1,4}|[0-9]{1,3}|[ \t]{1,8}|\n|[^\sA-Za-z0-9]|\s")
    _BASE = 256  # piece ids are above every control id: b"\x01" + bytes, read big-endian

    def __init__(self, n_ctx: int, fim: bool = False, file_separator: bool | None = None) -> None:
        self._n_ctx = n_ctx
        self._ids = {text: i for i, text in enumerate(CONTROL_TEXTS)}
        self._texts = dict(enumerate(CONTROL_TEXTS))
        self._cache: dict[str, int] = {}
        self.special = self._special(fim, fim if file_separator is None else file_separator)

    def _special(self, fim: bool, file_separator: bool) -> SpecialTokens:
        ids = self._ids
        return SpecialTokens(
            bos=ids[BOS],
            eos=ids[EOS],
            end_of_turn=ids[END_OF_TURN],
            fim_prefix=ids[FIM_PREFIX] if fim else None,
            fim_suffix=ids[FIM_SUFFIX] if fim else None,
            fim_middle=ids[FIM_MIDDLE] if fim else None,
            file_separator=ids[FILE_SEPARATOR] if file_separator else None,
        )

    def set_fim(self, fim: bool, file_separator: bool | None = None) -> None:
        """Whether the served model has FIM tokens (learned from the server after it answers)."""
        self.special = self._special(fim, fim if file_separator is None else file_separator)

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        out = [self.special.bos] if add_bos else []
        if special and "<" in text:
            at = 0
            for m in _CONTROL.finditer(text):
                out += self._plain(text[at : m.start()])
                out.append(self._ids[m.group()])
                at = m.end()
            out += self._plain(text[at:])
            return out
        return out + self._plain(text)

    def _plain(self, text: str) -> list[int]:
        cache = self._cache
        if len(cache) > 200_000:  # ids do not depend on it: forgetting is always safe
            cache.clear()
        out = []
        for piece in self._PIECES.findall(text):
            token = cache.get(piece)
            if token is None:
                token = cache[piece] = int.from_bytes(b"\x01" + piece.encode("utf-8"), "big")
            out.append(token)
        return out

    def detokenize(self, tokens: list[int], *, special: bool = False) -> str:
        parts = []
        for token in tokens:
            if token < self._BASE:
                if special and token in self._texts:
                    parts.append(self._texts[token])
                continue
            raw = token.to_bytes((token.bit_length() + 7) // 8, "big")
            parts.append(raw[1:].decode("utf-8", "replace"))
        return "".join(parts)

    def control_ids(self) -> dict[int, str]:
        return dict(self._texts)


class GgufTokenizer:
    """The served model's own vocabulary, read from a GGUF file by llama.cpp (vocabulary only)."""

    def __init__(self, path: str | Path, n_ctx: int) -> None:
        from .catalog import resolve
        from .native import open_llama

        file = resolve(str(path))
        if not file.is_file():
            raise ModelUnavailable(f"model.tokenizer {str(path)!r} is neither a GGUF file nor a named model.")
        try:
            self._llm = open_llama(model_path=str(file), vocab_only=True)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(f"model.tokenizer: llama.cpp could not read the vocabulary of {file} ({exc}).") from None
        self.path = file
        self._n_ctx = n_ctx
        model = self._llm._model
        import llama_cpp

        def valid(token: int) -> int | None:
            return token if token >= 0 else None

        self.file_special = self.special = SpecialTokens(
            bos=model.token_bos(),
            eos=model.token_eos(),
            end_of_turn=valid(model.token_eot()),
            fim_prefix=valid(model.token_prefix()),
            fim_suffix=valid(model.token_suffix()),
            fim_middle=valid(model.token_middle()),
            file_separator=valid(llama_cpp.llama_vocab_fim_sep(model.vocab)),
        )
        self._controls = {
            token: self.detokenize([token], special=True)
            for token in {
                self.special.bos, self.special.eos, self.special.end_of_turn, self.special.fim_prefix,
                self.special.fim_suffix, self.special.fim_middle, self.special.file_separator,
            }
            if token is not None
        }

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        if not text:
            return [self.special.bos] if add_bos else []
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def detokenize(self, tokens: list[int], *, special: bool = False) -> str:
        return self._llm.detokenize(tokens, special=special).decode("utf-8", "replace") if tokens else ""

    def control_ids(self) -> dict[int, str]:
        return dict(self._controls)

    def set_fim(self, fim: bool, file_separator: bool | None = None) -> None:
        """Leave out the file's FIM tokens (``model.fim = "none"``); it cannot add any it lacks."""
        sp = self.file_special
        keep_sep = fim if file_separator is None else fim and file_separator
        self.special = dataclasses.replace(
            sp,
            fim_prefix=sp.fim_prefix if fim else None,
            fim_suffix=sp.fim_suffix if fim else None,
            fim_middle=sp.fim_middle if fim else None,
            file_separator=sp.file_separator if keep_sep else None,
        )

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None


def prompt_text(tokenizer: ApproximateTokenizer | GgufTokenizer, tokens: list[int]) -> str:
    """The text a server must read to see ``tokens``: control tokens as their text, the runs of
    ordinary tokens between them written out and defused. A leading ``<bos>`` is left out (every
    server adds its own)."""
    controls = tokenizer.control_ids()
    if tokens and tokens[0] == tokenizer.special.bos:
        tokens = tokens[1:]
    parts: list[str] = []
    run: list[int] = []
    for token in tokens:
        if token in controls:
            if run:
                parts.append(defuse(tokenizer.detokenize(run)))
                run = []
            parts.append(controls[token])
        else:
            run.append(token)
    if run:
        parts.append(defuse(tokenizer.detokenize(run)))
    return "".join(parts)


def make_tokenizer(name: str, n_ctx: int) -> ApproximateTokenizer | GgufTokenizer:
    """``model.tokenizer``: "approximate", or a GGUF file or named model."""
    if name == "approximate":
        return ApproximateTokenizer(n_ctx)
    return GgufTokenizer(name, n_ctx)
