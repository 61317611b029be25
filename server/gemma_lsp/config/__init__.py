"""Settings: pydantic models, layered merge, atomic TOML persistence. Imports nothing of ours."""

from .memory import IndexSettings, MemorySettings, TierTTLs
from .models import (
    DEFAULT_MODEL,
    BackendSettings,
    ChatSettings,
    CompletionSettings,
    LlamaCppModelSettings,
    LogSettings,
    ModelSettings,
    OpenAIModelSettings,
    PromptSettings,
    Settings,
)
from .sampling import SamplingSettings, UnknownPreset
from .store import (
    CONFIG_ENV,
    apply_layer,
    deep_merge,
    default_cache_dir,
    default_config_path,
    load_file,
    load_settings,
    save_file,
    validate,
)
from .versions import CONFIG_VERSION

__all__ = [
    "CONFIG_ENV",
    "CONFIG_VERSION",
    "CompletionSettings",
    "IndexSettings",
    "MemorySettings",
    "TierTTLs",
    "LogSettings",
    "DEFAULT_MODEL",
    "BackendSettings",
    "ChatSettings",
    "LlamaCppModelSettings",
    "ModelSettings",
    "OpenAIModelSettings",
    "PromptSettings",
    "SamplingSettings",
    "Settings",
    "UnknownPreset",
    "apply_layer",
    "deep_merge",
    "default_cache_dir",
    "default_config_path",
    "load_file",
    "load_settings",
    "save_file",
    "validate",
]
