"""Pydantic models for every setting, with their defaults.

Keys are snake_case everywhere: in the TOML file, in ``initializationOptions`` and in
``workspace/didChangeConfiguration`` (under a ``gemma`` section or at the top level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .memory import IndexSettings, MemorySettings
from .sampling import SamplingSettings
from .strict import Bool, Float, Int


# What runs when model.path is not set: a named model (engine/catalog.py) that make installs.
DEFAULT_MODEL = "gemma3-270m"


class _Section(BaseModel):
    # An unknown key is almost always a typo: reject it rather than silently ignore it.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class BackendSettings(_Section):
    """What every backend's ``[model]`` section has; each backend adds its own keys."""

    n_ctx: Int = Field(default=8192, ge=256, le=1_048_576, description="Context size in tokens.")
    idle_unload_seconds: Float = Field(
        default=1800.0, ge=0, le=30 * 86400, description="Unload the model after this long without requests; 0 = never."
    )

    @property
    def label(self) -> str | None:
        """What is loaded, for progress titles (None: nothing configured)."""
        return None


class LlamaCppModelSettings(BackendSettings):
    """A GGUF Gemma model run in-process by llama.cpp (``backend = "llama.cpp"``, the default)."""

    backend: Literal["llama.cpp"] = "llama.cpp"
    path: Path | None = Field(
        default=None,
        description=(
            f"A Gemma GGUF file (gemma, gemma2 or gemma3 architecture), or a named model ({DEFAULT_MODEL}); "
            f"none = {DEFAULT_MODEL}, Gemma 3 270M from PyPI."
        ),
    )
    n_threads: Int | None = Field(
        default=None, ge=1, le=512,
        description="CPU threads; none = before each request, the cores other processes leave free.",
    )
    n_batch: Int = Field(default=512, ge=1, le=65536, description="Prompt evaluation batch size.")
    rope_scaling: Literal["none", "linear", "yarn"] | None = Field(
        default=None, description="RoPE scaling type; none = as the model file says."
    )
    rope_freq_base: Float = Field(default=0.0, ge=0, le=1e10, description="0 = from the model file.")
    rope_freq_scale: Float = Field(default=0.0, ge=0, le=100, description="0 = from the model file.")
    yarn_ext_factor: Float = Field(default=-1.0, ge=-1, le=100, description="-1 = from the model file.")
    yarn_attn_factor: Float = Field(default=1.0, gt=0, le=100, description="YaRN attention magnitude factor.")
    yarn_beta_fast: Float = Field(default=32.0, gt=0, le=1000, description="YaRN low correction dimension.")
    yarn_beta_slow: Float = Field(default=1.0, gt=0, le=1000, description="YaRN high correction dimension.")
    yarn_orig_ctx: Int = Field(default=0, ge=0, le=1_048_576, description="0 = from the model file.")
    kv_reuse: Bool = Field(
        default=True,
        description="Reuse the KV cache for the longest common token prefix (off only to measure its effect).",
    )
    swa_full: Bool = Field(
        default=False,
        description=(
            "Keep a full-size KV cache for sliding-window layers (gemma2/gemma3). Off: those layers keep only "
            "their window, so long prompts cost less memory and time; reuse falls back to a full evaluation "
            "when an edit reaches further back than the window."
        ),
    )
    warmup: Bool = Field(default=True, description="Run one evaluation after load so the first request is fast.")

    @property
    def label(self) -> str | None:
        return self.path.name if self.path is not None else DEFAULT_MODEL


class OpenAIModelSettings(BackendSettings):
    """A Gemma model served by an OpenAI-compatible inference server (``backend = "openai"``): llama.cpp's
    llama-server, vLLM, Ollama or TGI, on this machine or a shared one."""

    backend: Literal["openai"] = "openai"
    base_url: str | None = Field(
        default=None, description="The server's OpenAI API root, e.g. http://gpu-box:8080/v1."
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description=(
            "Several servers of the same model (with or instead of base_url): each is health-checked, a request goes "
            "to the least-loaded healthy one, a document's completions stay on one while it is healthy."
        ),
    )
    model: str | None = Field(
        default=None, description="The model's name on the server; none = the first one its /models lists."
    )
    api_key_env: str | None = Field(
        default=None,
        description="The environment variable that holds the API key (sent as a Bearer token to these servers only).",
    )
    api_key_file: Path | None = Field(
        default=None, description="A file whose first line is the API key (instead of api_key_env)."
    )
    verify_tls: Bool = Field(default=True, description="Check the server's TLS certificate (https:// URLs).")
    ca_file: Path | None = Field(
        default=None, description="A PEM file of the certificate authorities to trust (a team's own CA); none = the system's."
    )
    connect_timeout_s: Float = Field(default=2.0, gt=0, le=120, description="Longest wait for a connection.")
    timeout_s: Float = Field(
        default=30.0, gt=0, le=3600,
        description="Longest wait for the server's next bytes, the first piece of an answer included.",
    )
    max_connections: Int = Field(default=8, ge=1, le=256, description="Connections kept open per server (keep-alive).")
    health_interval_s: Float = Field(
        default=2.0, gt=0, le=3600, description="How often each server is checked in the background."
    )
    fim: Literal["auto", "tokens", "none"] = Field(
        default="auto",
        description=(
            "Completion prompts: tokens = FIM prompts with the model's FIM tokens written as text; none = the text "
            "before the cursor only; auto = FIM when the server's tokenizer knows the FIM tokens."
        ),
    )
    tokenizer: str = Field(
        default="approximate",
        description=(
            "What sizes prompt windows: approximate (about one token per word piece, on the safe side), or a GGUF "
            "file or named model (gemma3-270m) with the served model's vocabulary, read locally for exact counts."
        ),
    )
    embedding_model: str | None = Field(
        default=None,
        description=(
            "A model on the same servers for dense retrieval of memories through /v1/embeddings "
            "(when memory.embedding_model is not set); none = no remote embeddings."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _one_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("base_urls")
    @classmethod
    def _each_url(cls, value: list[str]) -> list[str]:
        for url in value:
            try:
                _check_url(url)
            except ValueError:
                raise ValueError(f"{url!r} is not an http:// or https:// URL") from None
        return [_check_url(url) for url in value]

    @model_validator(mode="after")
    def _a_server_and_one_key_source(self) -> "OpenAIModelSettings":
        if not self.urls:
            raise ValueError("set base_url (or base_urls) to the server's OpenAI API root, e.g. http://gpu-box:8080/v1")
        if self.api_key_env is not None and self.api_key_file is not None:
            raise ValueError("set api_key_env or api_key_file, not both")
        return self

    @property
    def urls(self) -> list[str]:
        """Every endpoint once, in order: base_url first, then base_urls."""
        found: list[str] = []
        for url in ([self.base_url] if self.base_url else []) + self.base_urls:
            if url not in found:
                found.append(url)
        return found

    @property
    def label(self) -> str | None:
        hosts = ", ".join(urlsplit(url).netloc for url in self.urls)
        return f"{self.model} on {hosts}" if self.model else hosts


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL such as http://gpu-box:8080/v1")
    return url.strip().rstrip("/")


def _default_backend(value: Any) -> Any:
    """A ``[model]`` section without ``backend`` is llama.cpp's."""
    if isinstance(value, dict) and "backend" not in value:
        return {"backend": "llama.cpp", **value}
    return value


# The ``[model]`` section: one settings class per backend, told apart by ``backend``. A new
# backend adds its class here (and its runtime to ``engine/backends.py``).
BACKENDS: dict[str, type[BackendSettings]] = {"llama.cpp": LlamaCppModelSettings, "openai": OpenAIModelSettings}
ModelSettings = Annotated[
    Union[tuple(BACKENDS.values())], Field(discriminator="backend"), BeforeValidator(_default_backend)
]


class CompletionSettings(_Section):
    """Inline completion: prompt windows and generation limits."""

    enabled: Bool = Field(default=True, description="Offer inline completions (false: the server answers none).")
    prefix_tokens: Int = Field(default=1024, ge=16, le=1_048_576, description="Tokens of text before the cursor in the prompt.")
    suffix_tokens: Int = Field(
        default=1024,
        ge=0,
        le=1_048_576,
        description=(
            "Tokens of text after the cursor in the prompt (a model without FIM tokens gets whole lines after the "
            "cursor's line, placed before the text that leads to the cursor)."
        ),
    )
    cold_prefix_tokens: Int = Field(
        default=128,
        ge=0,
        le=1_048_576,
        description=(
            "Prefix window of a request the KV cache holds nothing for (a file just opened): answered fast from "
            "this many tokens, while the full window is evaluated in the background; 0 = always the full window."
        ),
    )
    cold_suffix_tokens: Int = Field(
        default=192,
        ge=0,
        le=1_048_576,
        description="Suffix window of a request the KV cache holds nothing for (see cold_prefix_tokens).",
    )
    extra_context_tokens: Int = Field(
        default=1024, ge=0, le=1_048_576, description="Tokens of chunks from recently used files placed before the current one."
    )
    extra_context_chunks: Int = Field(default=16, ge=0, le=256, description="Most chunks kept in the ring.")
    extra_context_lines: Int = Field(default=32, ge=4, le=512, description="Lines per chunk.")
    retrieval_timeout_ms: Float = Field(
        default=30.0, ge=0, le=60_000, description="How long a completion waits for retrieved context (memories) before going without."
    )
    token_healing: Bool = Field(
        default=True,
        description=(
            "When the cursor is inside a word, let the model write the word's last token again (constrained to "
            "what is typed), instead of continuing from a cut no tokenizer would make."
        ),
    )
    fim_order: Literal["spm", "psm"] = Field(
        default="spm",
        description="spm: suffix before prefix, so a keystroke re-evaluates only the prompt's tail; psm: prefix first.",
    )
    grow_after_ms: Float = Field(
        default=400.0, ge=0, le=60_000,
        description="After a cold answer, how long the user must pause before the full window is evaluated.",
    )
    max_tokens: Int = Field(default=64, ge=1, le=32768, description="Most tokens one suggestion may have.")
    max_lines: Int = Field(default=8, ge=1, le=10_000, description="Most lines one suggestion may have.")
    time_limit_ms: Float = Field(default=2000.0, ge=0, le=600_000, description="Stop generating after this long; 0 = no limit.")
    preset: str | None = Field(
        default=None, description="Sampler preset (see [sampling]); none = sampling.features.completion."
    )
    seed: Int | None = Field(default=None, ge=0, le=2**32 - 1, description="Seed for sampling; none = 0 (the same text for the same prompt).")

    @model_validator(mode="after")
    def _windows_fit(self) -> "CompletionSettings":
        if self.prefix_tokens + self.suffix_tokens + self.extra_context_tokens + self.max_tokens + 8 > 1_048_576:
            raise ValueError("prefix_tokens + suffix_tokens + max_tokens is larger than any context")
        return self


class ChatSettings(_Section):
    """Chat: how long an answer may be and how much of the conversation the model sees again."""

    max_tokens: Int = Field(default=512, ge=1, le=32768, description="Most tokens one answer may have.")
    history_tokens: Int = Field(
        default=2048, ge=0, le=1_000_000,
        description="Earlier turns the model sees again, newest first, the oldest dropped first.",
    )


class PromptSettings(_Section):
    """Prompt templates (``*.jinja`` files): where they are read from and how much memory they get."""

    dirs: list[Path] = Field(
        default_factory=list,
        description=(
            "Folders of your own templates, searched in order before the built-in prompts/ folder; a template "
            "named like a built-in one replaces it."
        ),
    )
    rag_budget_tokens: Int = Field(
        default=1024, ge=0, le=65536, description="Tokens of retrieved memories (rag_context) a template gets by default."
    )
    recent_budget_tokens: Int = Field(
        default=256, ge=0, le=65536, description="Tokens of recent chat turns and accepted completions (rag_recent)."
    )
    render_timeout_seconds: Float = Field(
        default=3.0, ge=0.1, le=60.0,
        description="The longest a template may take to render; a slower one is stopped and named.",
    )
    render_memory_mb: Int = Field(
        default=512, ge=64, le=16384,
        description="Memory (MB) of the process that renders templates; a template needing more is stopped and named.",
    )
    max_prompt_chars: Int = Field(
        default=1_000_000, ge=1000, le=100_000_000,
        description="The most characters a rendered prompt, or any string a template makes, may have.",
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="warning", description="Log level of the server's own messages; -v / -vv on the command line raise it."
    )


class Settings(_Section):
    """All settings. Merged: defaults <- TOML file <- initializationOptions <- didChangeConfiguration."""

    model: ModelSettings = Field(default_factory=LlamaCppModelSettings)
    completion: CompletionSettings = Field(default_factory=CompletionSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _completion_preset_exists(self) -> "Settings":
        name = self.completion.preset
        if name is not None and name not in self.sampling.presets:
            known = ", ".join(sorted(self.sampling.presets))
            raise ValueError(f"completion.preset: there is no sampler preset {name!r} (known: {known})")
        return self

    @model_validator(mode="after")
    def _prompt_fits_context(self) -> "Settings":
        c = self.completion
        need = c.prefix_tokens + c.suffix_tokens + c.extra_context_tokens + c.max_tokens + 64
        if need > self.model.n_ctx:
            raise ValueError(
                f"completion.prefix_tokens + suffix_tokens + extra_context_tokens + max_tokens ({need - 64}, "
                f"plus room for headers) does not fit in model.n_ctx ({self.model.n_ctx})"
            )
        return self
