"""What the end-to-end tests share: how to start the real server as an editor does."""

from __future__ import annotations

import sys

SERVER_COMMAND = [sys.executable, "-m", "gemma_lsp", "serve", "-v"]
