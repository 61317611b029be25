"""The remote backend's parts that need no server: its tokenizers, how a preset becomes request
fields, the settings, and how chat messages are sent."""

from __future__ import annotations

import pytest

from gemma_lsp.config import Settings
from gemma_lsp.config.sampling import default_presets
from gemma_lsp.config.store import apply_layer
from gemma_lsp.engine import ChatMessage
from gemma_lsp.engine.remote import fold_system
from gemma_lsp.engine.remote_fields import sampling_fields
from gemma_lsp.engine.remote_tokenizer import ApproximateTokenizer, GgufTokenizer, defuse, make_tokenizer, prompt_text
from gemma_lsp.errors import ConfigError, ModelUnavailable

CODE = '''import os


class Report:
    """Totals of a list of values."""

    def __init__(self, values: list[int]) -> None:
        self.values = values  # café, naïve, 東京

    def total(self) -> int:
        return sum(v for v in self.values if v > 0x10)
'''


def test_the_approximate_tokenizer_round_trips_any_text():
    tokenizer = ApproximateTokenizer(4096)
    for text in (CODE, "", "\t\t  \n\r\n", "emoji 🎉 and \x00 nul", "<|fim_prefix|> in a file"):
        assert tokenizer.detokenize(tokenizer.tokenize(text)) == text


def test_the_approximate_tokenizer_counts_at_least_the_real_tokens(vocab):
    tokenizer = ApproximateTokenizer(4096)
    approximate, real = len(tokenizer.tokenize(CODE)), len(vocab.tokenize(CODE))
    assert approximate >= real
    assert approximate <= 2.5 * real  # on the safe side, not wildly so


def test_control_tokens_are_ids_only_when_asked_for():
    tokenizer = ApproximateTokenizer(4096, fim=True)
    sp = tokenizer.special
    assert tokenizer.tokenize("<|fim_prefix|>", special=True) == [sp.fim_prefix]
    assert sp.fim_prefix not in tokenizer.tokenize("<|fim_prefix|>")
    assert tokenizer.tokenize("a", add_bos=True)[0] == sp.bos
    tokenizer.set_fim(False)
    assert tokenizer.special.fim_prefix is None and tokenizer.special.file_separator is None


def test_a_prompt_is_written_as_text_with_its_control_tokens_and_without_bos():
    tokenizer = ApproximateTokenizer(4096, fim=True)
    sp = tokenizer.special
    ids = [sp.bos, sp.fim_suffix, *tokenizer.tokenize("\nreturn x\n"), sp.fim_prefix,
           *tokenizer.tokenize("s = '<|fim_middle|>'\n"), sp.fim_middle]  # fmt: skip
    assert prompt_text(tokenizer, ids) == (
        "<|fim_suffix|>\nreturn x\n<|fim_prefix|>s = '<\u200b|fim_middle|>'\n<|fim_middle|>"
    )


def test_document_text_cannot_become_a_control_token():
    assert defuse("a <end_of_turn> b <bos>") == "a <\u200bend_of_turn> b <\u200bbos>"
    assert defuse("if a < b and c > d: <div>") == "if a < b and c > d: <div>"


def test_a_gguf_tokenizer_reads_the_served_models_vocabulary(tiny_model):
    tokenizer = make_tokenizer(str(tiny_model), 4096)
    try:
        assert isinstance(tokenizer, GgufTokenizer) and tokenizer.special.fim_prefix is not None
        ids = tokenizer.tokenize(CODE)
        assert tokenizer.detokenize(ids) == CODE
        sp = tokenizer.special
        assert prompt_text(tokenizer, [sp.bos, sp.fim_prefix, *tokenizer.tokenize("x = 1"), sp.fim_middle]) == (
            "<|fim_prefix|>x = 1<|fim_middle|>"
        )
        tokenizer.set_fim(False)
        assert tokenizer.special.fim_prefix is None and tokenizer.special.bos == sp.bos
    finally:
        tokenizer.close()


def test_a_tokenizer_that_is_no_file_is_one_sentence(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"^model\.tokenizer '.*nothing\.gguf' is neither a GGUF file nor a named model\.$"):
        make_tokenizer(str(tmp_path / "nothing.gguf"), 4096)


def test_every_default_preset_becomes_request_fields():
    fields = {name: sampling_fields(specs, seed=3) for name, specs in default_presets().items()}
    assert fields["greedy"] == {"temperature": 0.0}
    assert fields["completion"] == {"top_k": 40, "min_p": 0.05, "temperature": 0.2, "seed": 3}
    assert fields["chat"] == {"top_k": 64, "top_p": 0.95, "temperature": 1.0, "seed": 3}
    assert fields["mirostat"] == {
        "temperature": 0.8, "mirostat": 2, "mirostat_mode": 2, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "seed": 3,
    }
    assert fields["typical"] == {"typical_p": 0.95, "temperature": 0.8, "seed": 3}
    assert fields["penalties"]["repeat_penalty"] == fields["penalties"]["repetition_penalty"] == 1.1
    assert fields["creative"]["dynatemp_range"] == 0.5
    assert sampling_fields([], seed=0) == {"temperature": 0.0}  # no specs: greedy, as in-process


def test_a_llama_cpp_server_gets_the_samplers_a_preset_lacks_switched_off():
    fields = sampling_fields(default_presets()["chat"], seed=1, llama_cpp=True)
    assert fields == {"top_k": 64, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0, "top_p": 0.95,
                      "temperature": 1.0, "seed": 1}  # fmt: skip


def test_a_logit_ban_becomes_the_lowest_bias_a_server_takes():
    fields = sampling_fields([{"type": "logit_bias", "bias": {5: float("-inf"), 7: 250.0}}, {"type": "greedy"}], 0)
    assert fields["logit_bias"] == {"5": -100.0, "7": 100.0}


def test_system_messages_are_folded_into_the_first_user_message():
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello"),
                ChatMessage("user", "Bye"))  # fmt: skip
    assert fold_system(messages) == [
        {"role": "user", "content": "Be brief.\n\nHi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


def test_the_remote_settings_and_their_mistakes():
    settings = apply_layer(Settings(), {"model": {"backend": "openai", "base_url": "http://gpu:8080/v1/",
                                                  "base_urls": ["http://gpu2:8080/v1", "http://gpu:8080/v1"]}})  # fmt: skip
    assert settings.model.urls == ["http://gpu:8080/v1", "http://gpu2:8080/v1"]
    assert settings.model.label == "gpu:8080, gpu2:8080"
    cases = {
        "Invalid setting model: set base_url (or base_urls) to the server's OpenAI API root, e.g. "
        "http://gpu-box:8080/v1.": {},
        "Invalid setting model.base_url: must be an http:// or https:// URL such as http://gpu-box:8080/v1 "
        "(got 'gpu:8080').": {"base_url": "gpu:8080"},
        "Invalid setting model.base_urls: 'ftp://x' is not an http:// or https:// URL (got ['ftp://x']).":
            {"base_urls": ["ftp://x"]},
        "Invalid setting model: set api_key_env or api_key_file, not both.":
            {"base_url": "http://a/v1", "api_key_env": "K", "api_key_file": "/k"},
        "Invalid setting model.fim: Input should be 'auto', 'tokens' or 'none' (got 'yes').":
            {"base_url": "http://a/v1", "fim": "yes"},
        "Invalid setting model.path: unknown setting.": {"base_url": "http://a/v1", "path": "/m.gguf"},
    }
    for message, keys in cases.items():
        with pytest.raises(ConfigError) as info:
            apply_layer(Settings(), {"model": {"backend": "openai", **keys}})
        assert str(info.value) == message
    # Back to the in-process backend: none of the remote keys stay behind.
    back = apply_layer(settings, {"model": {"backend": "llama.cpp"}})
    assert back.model.backend == "llama.cpp" and not hasattr(back.model, "base_url")


def test_token_healing_is_off_for_the_remote_backend_only():
    from gemma_lsp.app import Services

    remote = Settings(model={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"})
    local = Settings()
    assert remote.completion.token_healing and local.completion.token_healing
    assert Services.from_settings(remote, memory=False)._completion_settings().token_healing is False
    assert Services.from_settings(local, memory=False)._completion_settings().token_healing is True
