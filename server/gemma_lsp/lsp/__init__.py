"""The LSP layer: the only package that imports pygls and lsprotocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .actions import CodeActionFeature
from .chat import ChatFeature
from .completion import CompletionFeature
from .memory import MemoryFeature
from .model import ModelFeature
from .prompts import PromptsFeature
from .server import GemmaLanguageServer

# In the order lifecycle events reach them: the model starts loading before memories are read.
FEATURES = (ModelFeature, CompletionFeature, MemoryFeature, PromptsFeature, ChatFeature, CodeActionFeature)


def create_server(
    config_path: Path | None = None, overrides: dict[str, Any] | None = None, cli_log_level: int = logging.WARNING
) -> GemmaLanguageServer:
    server = GemmaLanguageServer(config_path=config_path, overrides=overrides, cli_log_level=cli_log_level)
    for feature in FEATURES:
        server.add_feature(feature(server))
    return server


__all__ = ["FEATURES", "GemmaLanguageServer", "create_server"]
