"""System programs the tests drive for real (redis-server, openssl, Neovim ...)."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, why: str) -> str:
    """The tool's path; missing: skip with the reason, or fail under CI=true."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed ({why})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return path
