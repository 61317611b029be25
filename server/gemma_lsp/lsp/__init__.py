"""The LSP layer: the only package that imports pygls and lsprotocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .features import STATS_METHOD, register
from .server import GemmaLanguageServer


def create_server(
    config_path: Path | None = None, overrides: dict[str, Any] | None = None, cli_log_level: int = logging.WARNING
) -> GemmaLanguageServer:
    server = GemmaLanguageServer(config_path=config_path, overrides=overrides, cli_log_level=cli_log_level)
    register(server)
    return server


__all__ = ["STATS_METHOD", "GemmaLanguageServer", "create_server"]
