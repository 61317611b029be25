"""Fixtures of the engine tests: an EngineManager with the tiny test model loaded."""

from __future__ import annotations

import pytest

from gemma_lsp.config import LlamaCppModelSettings
from gemma_lsp.engine import EngineManager


@pytest.fixture
async def manager(tiny_model):
    m = EngineManager(LlamaCppModelSettings(path=tiny_model, n_ctx=4096, idle_unload_seconds=0))
    await m.load()
    yield m
    await m.close()
