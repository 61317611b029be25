"""Helpers the remote backend's tests import (fixtures stay in conftest.py, which tests never import)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from gemma_lsp.config import OpenAIModelSettings


def server_extra_installed() -> None:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("sse_starlette") is None:
        reason = "llama-cpp-python's [server] extra is not installed (`make install-dev` installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)


def remote_settings(*urls: str, **options) -> OpenAIModelSettings:
    """Settings of the remote backend on ``urls``: quick health checks and timeouts for tests."""
    options.setdefault("idle_unload_seconds", 0)
    options.setdefault("n_ctx", 4096)
    options.setdefault("health_interval_s", 0.2)
    options.setdefault("connect_timeout_s", 1.0)
    options.setdefault("timeout_s", 10.0)
    return OpenAIModelSettings(base_url=urls[0], base_urls=list(urls[1:]), **options)
