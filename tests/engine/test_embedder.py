"""Embeddings through llama.cpp: the EmbeddingGemma-shaped test model, and batching that never
changes a vector (a text's vector is the same alone, packed with others, or on another worker)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from gemma_lsp.config.models import LlamaCppModelSettings  # noqa: E402
from gemma_lsp.engine.embedder import MAX_TOKENS, PACK_TOKENS, EmbeddingContext, GgufEmbedder  # noqa: E402
from gemma_lsp.engine.gguf import read_architecture  # noqa: E402
from gemma_lsp.engine.llamacpp import LlamaCppBackend  # noqa: E402
from gemma_lsp.engine.testmodel import MIN_EMBEDDING_LAYERS, PRESETS, build_vocabulary, write_test_model  # noqa: E402

CHUNK = '''def parse_http_response(self, raw_payload: bytes, retries: int = 3) -> HttpResponse:
    """Parse the raw payload of one HTTP response."""
    header, _, body = raw_payload.partition(b"\\r\\n\\r\\n")
    for line in header.split(b"\\r\\n")[1:]:
        key, value = line.split(b":", 1)
        self.headers[key.strip().lower()] = value.strip()
    return HttpResponse(status=self.status, headers=self.headers, body=body)'''

# Short and long, blank, non-ASCII, one longer than a packed decode and one past MAX_TOKENS.
TEXTS = [
    "def add(a, b):",
    "class Point:",
    CHUNK,
    "",
    "   ",
    "Größe der Einträge: ✓",
    "return value",
    CHUNK.replace("http", "ftp") * 2,
    "x = 1\n" * 400,
    "import os",
]


@pytest.fixture(scope="module")
def embedding_model(tmp_path_factory) -> str:
    return write_test_model(tmp_path_factory.mktemp("emb") / "gemma-embedding.gguf", arch="gemma-embedding", preset="embedding")


def _close(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to rounding. Flash attention holds K and V in f16, and a packed decode groups the
    sums differently, so components agree to ~1e-3 of the vector's scale (cosine > 0.99999);
    any real mix-up of texts or positions moves them by the vector's own scale (cosine ~0)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    assert a.shape == b.shape
    scale = np.abs(b).max(axis=1, keepdims=True)
    assert np.all(np.abs(a - b) <= 5e-3 * scale)
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99999


def test_the_embedding_test_model_is_an_encoder_llama_cpp_loads(embedding_model):
    assert read_architecture(embedding_model) == "gemma-embedding"
    embedder = GgufEmbedder(embedding_model)
    try:
        assert embedder.dim == 64
        vectors = embedder.embed(["def add(a, b):", "class Point:"])
        assert vectors.shape == (2, 64) and vectors.dtype == np.float32
        assert np.all(np.isfinite(vectors)) and not np.allclose(vectors[0], vectors[1])
        assert embedder.embed([]).shape == (0, 64)
    finally:
        embedder.close()


def test_gemma_embedding_needs_six_layers(tmp_path):
    assert PRESETS["embedding"].n_layer == MIN_EMBEDDING_LAYERS
    with pytest.raises(ValueError, match="at least 6 layers"):
        write_test_model(tmp_path / "x.gguf", arch="gemma-embedding", preset="tiny")


def test_code_words_extend_the_vocabulary_without_moving_a_token():
    base, _, _ = build_vocabulary()
    rich, scores, types = build_vocabulary(code_words=True)
    assert rich[: len(base)] == base and len(rich) > len(base) + 1000
    assert len(rich) == len(set(rich)) == len(scores) == len(types)
    for word in ("\u2581response", "Response", "\u2581handler", "Handler"):
        assert word in rich


def test_a_vector_does_not_depend_on_its_batch(embedding_model):
    """Alone, packed with others (short texts share a decode), reordered, or on a second worker:
    the same text gives the same vector, in the caller's order."""
    one = GgufEmbedder(embedding_model, n_threads=1)
    two = GgufEmbedder(embedding_model, n_threads=1, workers=2)
    try:
        alone = np.stack([one.embed([t])[0] for t in TEXTS])
        together = one.embed(TEXTS)
        _close(together, alone)
        _close(one.embed(TEXTS[::-1]), alone[::-1])
        _close(two.embed(TEXTS), alone)
        _close(two.embed(TEXTS * 3), np.concatenate([alone] * 3))
        # distinct texts keep distinct vectors (the order really is preserved, not just the set)
        distinct = [0, 1, 2, 5, 6, 7, 8, 9]
        assert len({alone[i].round(5).tobytes() for i in distinct}) == len(distinct)
        # a blank text is embedded as one space
        _close(alone[3], alone[4])
    finally:
        one.close()
        two.close()


def test_packing_and_truncation(embedding_model):
    ctx = EmbeddingContext.open(embedding_model, n_threads=1)
    try:
        assert ctx.max_tokens == MAX_TOKENS and ctx.pack_tokens == PACK_TOKENS
        long = ctx.tokenize("x = 1\n" * 400)
        assert len(long) == MAX_TOKENS and long[0] == ctx._llm.token_bos()  # cut at the end, BOS kept
        _close(ctx.embed(["x = 1\n" * 400]), ctx.embed(["x = 1\n" * 600]))  # what is cut away does not count
        many = ["item %d" % i for i in range(300)]  # more texts than fit one decode: several decodes
        _close(ctx.embed(many)[:5], np.stack([ctx.embed([t])[0] for t in many[:5]]))
    finally:
        ctx.close()


def test_a_causal_gemma_embeds_the_same_alone_or_batched(tiny_model):
    """LlamaCppBackend.embed on the tiny gemma3: its KV cache is cleared between decodes."""
    backend = LlamaCppBackend.load(LlamaCppModelSettings(path=tiny_model, n_ctx=2048))
    try:
        alone = np.stack([backend.embed([t])[0] for t in TEXTS])
        _close(backend.embed(TEXTS), alone)
        assert alone.shape == (len(TEXTS), 64)
    finally:
        backend.close()
