"""Writes small random-weight Gemma-family GGUF models for tests, the demo and benchmarks.

The weights are random, so the text such a model writes is nonsense; what is real is
everything around it: the architecture llama.cpp runs, Gemma's special tokens and ids, a
SentencePiece vocabulary with byte fallback (any text round-trips), FIM tokens and a Gemma
chat template. That is exactly what the engine and the server need to be exercised for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARCHES = ("gemma", "gemma2", "gemma3", "gemma-embedding")

# llama.cpp runs ``gemma-embedding`` (EmbeddingGemma) with a fixed pattern of five
# sliding-window layers then one global layer; with fewer than six layers the global
# attention mask is never used, and this llama.cpp build then aborts the process in its first
# decode (GGML_ASSERT in llm_graph_input_attn_no_cache::set_input). So such a model needs six.
MIN_EMBEDDING_LAYERS = 6

# Gemma's own ids for the first four, then the control tokens this project relies on.
SPECIAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|file_separator|>",
)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Ordinary pieces: enough code-shaped vocabulary that source text tokenizes into far fewer
# tokens than bytes, as with a real model. "\u2581" stands for a space (SentencePiece).
_WORDS = (
    "def class return import from self None True False if elif else for while in not and or "
    "with as try except finally raise yield lambda pass break continue async await print len "
    "range list dict set str int float bool value result name data item items key keys args "
    "kwargs index count total path file line lines text token tokens model config request "
    "response error message server client test assert function const let var fn pub struct "
    "impl use mut match type interface export package func go nil err string number void new "
    "this public private static println format get put add size open close read write main"
).split()
# A richer vocabulary for the embedding preset: words that run through code of every kind,
# each lower-case and Capitalized (for camelCase and PascalCase names). A real Gemma tokenizer
# (262k pieces) has them all as single tokens. The base vocabulary spells most identifiers
# letter by letter: a rag-bench code chunk (~1,000 characters) is ~630 tokens with it and ~340
# with these words (~2.9 characters a token, as digits, "_" and punctuation stay single), and
# an encoder's attention cost grows with the square of that length.
_CODE_WORDS = (
    # verbs
    "get set add remove delete create update insert find search sort filter map reduce parse "
    "load save open close read write build check validate render fetch send receive handle "
    "process run start stop init reset clear flush merge split join resolve compute apply emit "
    "register encode decode format normalize convert match scan collect group count copy move "
    "call raise throw catch log show hide enable disable connect bind listen accept respond wait "
    "lock unlock push pop peek append extend replace strip trim lower upper compare equal hash "
    "sign verify encrypt decrypt compress extract install configure deploy mock patch wrap "
    "unwrap serialize dispatch notify subscribe publish schedule retry cancel abort commit "
    "rollback migrate sync refresh track trace measure "
    # nouns
    "data values item items list array table row rows column columns record records field "
    "fields schema models view views controller service services handler handlers settings "
    "option options param params argument result results errors warning exception messages "
    "event events signal signals callback queue stack heap tree node nodes edge edges graph "
    "vertex batch task tasks job jobs worker workers thread threads pool cache store storage "
    "memory buffer stream reader writer input output source target user users account session "
    "cookie header headers body payload route routes url uri http json yaml xml html query "
    "document workspace project module modules packages symbol symbols types object instance "
    "method variable constant state status context scope position offset length limit min max "
    "first last next prev current default local remote id page window frame layer layers "
    "tensor vector matrix shape weight weights prompt sampler logit logits chunk chunks block "
    "cursor time date timer clock logger level debug info case spec fixture app api db "
    "database sql migration version release env dir folder image email address price order "
    "cart product customer invoice payment "
    # adjectives
    "raw parsed cached pending stale empty full valid invalid active global internal external "
    "base abstract final old bad good "
    # English for comments and docstrings
    "the an of to is it on at by be are was this that all any each one two no can will should "
    "must may when then than there here which what who how why"
).split()
_SYMBOLS = list("()[]{}:;.,=+-*/<>!&|%#'\"_@\\^~?`$")
_MULTI = ["==", "!=", "<=", ">=", "->", "=>", "()", "):", "],", "},", "+=", "-=", "::", '""', "''"]


@dataclass(frozen=True)
class Shape:
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    context_length: int
    dtype: str  # "f32" or "f16"
    code_words: bool = False  # add _CODE_WORDS to the vocabulary (see build_vocabulary)


PRESETS = {
    # ~0.5 MB with the default vocabulary: loads in milliseconds, for fast tests.
    "tiny": Shape(n_embd=64, n_layer=2, n_head=2, n_head_kv=1, head_dim=32, n_ff=128,
                  context_length=8192, dtype="f32"),
    # Gemma 3 270M's dimensions with a small vocabulary (~200 MB f16): realistic CPU cost.
    "270m-shape": Shape(n_embd=640, n_layer=18, n_head=4, n_head_kv=1, head_dim=256, n_ff=2048,
                        context_length=32768, dtype="f16"),
    # For ``gemma-embedding`` (~1.6 MB): the fewest layers llama.cpp runs for it
    # (MIN_EMBEDDING_LAYERS), one narrow head and a narrow FFN, so a token costs little; 64-wide
    # vectors; the code-word vocabulary. EmbeddingGemma's own context is 2048 tokens.
    "embedding": Shape(n_embd=64, n_layer=MIN_EMBEDDING_LAYERS, n_head=1, n_head_kv=1, head_dim=8,
                       n_ff=32, context_length=2048, dtype="f32", code_words=True),
}


def build_vocabulary(
    vocab_size: int | None = None, code_words: bool = False
) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types: specials, 256 byte tokens, then ordinary pieces.

    ``code_words`` adds ``_CODE_WORDS``, and every word Capitalized, after the base pieces (so
    every base token keeps its id).
    """
    import gguf

    tokens: list[str] = list(SPECIAL_TOKENS)
    types: list[int] = [int(gguf.TokenType.CONTROL)] * len(SPECIAL_TOKENS)
    types[3] = int(gguf.TokenType.UNKNOWN)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [int(gguf.TokenType.BYTE)] * 256

    pieces: list[str] = []
    seen: set[str] = set(tokens)

    def add(piece: str) -> None:
        if piece not in seen:
            seen.add(piece)
            pieces.append(piece)

    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        add(c)
        add("\u2581" + c)
    for s in _SYMBOLS + _MULTI:
        add(s)
        add("\u2581" + s)
    add("\u2581")
    for n in (1, 2, 3):
        add("\n" * n)
        add("\t" * n)
    # SentencePiece merges adjacent pieces whose concatenation is in the vocabulary, so a word
    # becomes one token only if every prefix on the way is a piece too.
    def add_word(w: str) -> None:
        for k in range(2, len(w) + 1):
            add(w[:k])
            add("\u2581" + w[:k])

    for w in _WORDS:
        add_word(w)
    for n in (2, 3, 4, 6, 8, 12, 16):
        for k in range(2, n + 1):
            add("\u2581" * k)
    if code_words:
        for w in (*_WORDS, *_CODE_WORDS):
            add_word(w)
            add_word(w.capitalize())
    if vocab_size is not None:
        base = len(tokens) + len(pieces)
        if vocab_size < base:
            raise ValueError(f"vocab_size must be at least {base}, got {vocab_size}")
        i = 0
        while len(tokens) + len(pieces) < vocab_size:
            add(f"\u2581w{i}")
            i += 1
    # SentencePiece merges by score: longer pieces first, so common words become one token.
    scores = [0.0] * len(tokens) + [float(len(p)) - i * 1e-6 for i, p in enumerate(pieces)]
    tokens += pieces
    types += [int(gguf.TokenType.NORMAL)] * len(pieces)
    return tokens, scores, types


def write_test_model(
    path: str | Path,
    arch: str = "gemma3",
    preset: str = "tiny",
    vocab_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Write a random-weight Gemma-family GGUF to ``path`` and return the path.

    ``vocab_size`` pads the vocabulary with filler pieces (262144 gives Gemma 3's size).
    ``gemma-embedding`` writes an EmbeddingGemma-shaped encoder: bidirectional attention, mean
    pooling declared in the file, no output head (so no vocabulary-wide logits are computed);
    it needs a preset with at least ``MIN_EMBEDDING_LAYERS`` layers, such as ``embedding``.
    The write goes to a temporary file renamed into place, so a reader never sees half a model.
    """
    import gguf

    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    shape = PRESETS[preset]
    if arch == "gemma-embedding" and shape.n_layer < MIN_EMBEDDING_LAYERS:
        raise ValueError(
            f"gemma-embedding needs at least {MIN_EMBEDDING_LAYERS} layers (llama.cpp's fixed sliding-window "
            f"pattern); preset {preset!r} has {shape.n_layer}: use preset 'embedding'"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, scores, types = build_vocabulary(vocab_size, code_words=shape.code_words)
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)
    dtype = np.float16 if shape.dtype == "f16" else np.float32

    tmp = path.with_name(path.name + ".partial")
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_name(f"gemma-lsp test model ({arch}, {preset}, random weights)")
    w.add_context_length(shape.context_length)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_key_length(shape.head_dim)
    w.add_value_length(shape.head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if shape.dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    if arch == "gemma2":
        w.add_attn_logit_softcapping(50.0)
        w.add_final_logit_softcapping(30.0)
        w.add_sliding_window(4096)
    if arch == "gemma-embedding":  # as EmbeddingGemma's GGUF: llama.cpp requires the pooling type
        # EmbeddingGemma's window is 512 (symmetric); 128 keeps five layers of six cheap on texts
        # of a few hundred tokens, since llama.cpp's flash attention skips masked tiles (measured:
        # +25-30% embedding rate on the rag bench's code chunks, ~340 tokens each).
        w.add_sliding_window(128)
        w.add_rope_freq_base(1_000_000.0)
        w.add_pooling_type(gguf.PoolingType.MEAN)
    if arch == "gemma3":
        w.add_sliding_window(512)
        w.add_rope_freq_base(1_000_000.0)
        w.add_uint32(f"{arch}.attention.sliding_window_pattern", 6)

    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_pad_token_id(0)
    w.add_eos_token_id(1)
    w.add_bos_token_id(2)
    w.add_unk_token_id(3)
    w.add_eot_token_id(SPECIAL_TOKENS.index("<end_of_turn>"))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    w.add_uint32("tokenizer.ggml.fim_pre_token_id", SPECIAL_TOKENS.index("<|fim_prefix|>"))
    w.add_uint32("tokenizer.ggml.fim_suf_token_id", SPECIAL_TOKENS.index("<|fim_suffix|>"))
    w.add_uint32("tokenizer.ggml.fim_mid_token_id", SPECIAL_TOKENS.index("<|fim_middle|>"))
    w.add_uint32("tokenizer.ggml.fim_sep_token_id", SPECIAL_TOKENS.index("<|file_separator|>"))
    w.add_chat_template(CHAT_TEMPLATE)

    def rand(*shape_: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape_, dtype=np.float32) * scale).astype(dtype)

    def norm(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)  # norms stay f32, as in real Gemma GGUFs

    e, hd = shape.n_embd, shape.head_dim
    embd = rand(n_vocab, e, scale=1.0 / np.sqrt(e))
    # Control tokens get a zero embedding row (tied output): the random model rarely emits
    # them, as a trained one rarely does, so generation runs until a limit rather than
    # stopping at once. Stop-token handling is tested with a sampler that asks for them.
    embd[: len(SPECIAL_TOKENS)] = 0
    # Byte-fallback tokens get small rows too: a trained model rarely spells text byte by byte,
    # and a random one that does writes control characters instead of visible text.
    n_bytes_end = len(SPECIAL_TOKENS) + 256
    embd[len(SPECIAL_TOKENS) : n_bytes_end] = (embd[len(SPECIAL_TOKENS) : n_bytes_end] * 0.25).astype(dtype)
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", norm(e))
    s_in = 1.0 / np.sqrt(e)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", norm(e))
        w.add_tensor(p + "attn_q.weight", rand(shape.n_head * hd, e, scale=s_in))
        w.add_tensor(p + "attn_k.weight", rand(shape.n_head_kv * hd, e, scale=s_in))
        w.add_tensor(p + "attn_v.weight", rand(shape.n_head_kv * hd, e, scale=s_in))
        w.add_tensor(p + "attn_output.weight", rand(e, shape.n_head * hd, scale=1.0 / np.sqrt(shape.n_head * hd)))
        w.add_tensor(p + "ffn_norm.weight", norm(e))
        w.add_tensor(p + "ffn_gate.weight", rand(shape.n_ff, e, scale=s_in))
        w.add_tensor(p + "ffn_up.weight", rand(shape.n_ff, e, scale=s_in))
        w.add_tensor(p + "ffn_down.weight", rand(e, shape.n_ff, scale=1.0 / np.sqrt(shape.n_ff)))
        if arch in ("gemma2", "gemma3", "gemma-embedding"):
            w.add_tensor(p + "post_attention_norm.weight", norm(e))
            w.add_tensor(p + "post_ffw_norm.weight", norm(e))
        if arch in ("gemma3", "gemma-embedding"):
            w.add_tensor(p + "attn_q_norm.weight", norm(hd))
            w.add_tensor(p + "attn_k_norm.weight", norm(hd))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path
