"""The real server plus one feature that fails on purpose, for tests/lsp/test_lsp_features.py.

Run as ``python faulty_server.py``; it serves over stdio exactly like ``gemma-lsp serve``.
"""

from __future__ import annotations

import logging

from gemma_lsp.cli import _configure_logging
from gemma_lsp.lsp import create_server
from gemma_lsp.lsp.feature import LanguageFeature, command
from gemma_lsp.lsp.transport import exit_now, serve_stdio

BOOM = "test.faulty.boom"


class Faulty(LanguageFeature):
    name = "faulty"

    def document_opened(self, uri: str) -> None:
        raise RuntimeError("broken on purpose")

    @command(BOOM)
    async def boom(self, arg: dict) -> None:
        raise ValueError(f"boom {arg.get('n')}")


if __name__ == "__main__":
    _configure_logging(1, None)
    server = create_server(cli_log_level=logging.INFO)
    server.add_feature(Faulty(server))
    exit_now(serve_stdio(server))
