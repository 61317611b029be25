"""Shared fixtures: real small Gemma GGUFs made by the project's own writer, isolated config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gemma_lsp.engine.testmodel import write_test_model
from system_tools import required_tool

@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never read or write the developer's own config or cache from tests (server children inherit this)."""
    home = tmp_path_factory.mktemp("home")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ["XDG_DATA_HOME"] = str(home / "data")  # where `gemma-lsp bench` stores its runs
    os.environ.pop("GEMMA_LSP_CONFIG", None)
    os.environ.pop("GEMMA_LSP_BENCH_STORE", None)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(model_dir: Path) -> Path:
    """The tiny gemma3 test model: ~0.5 MB, loads in milliseconds."""
    return write_test_model(model_dir / "gemma3-tiny.gguf", arch="gemma3", preset="tiny")


@pytest.fixture(scope="session")
def model_factory(model_dir: Path):
    def make(arch: str = "gemma3", preset: str = "tiny", vocab_size: int | None = None) -> Path:
        path = model_dir / f"{arch}-{preset}-{vocab_size or 'default'}.gguf"
        if not path.exists():
            write_test_model(path, arch=arch, preset=preset, vocab_size=vocab_size)
        return path

    return make


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (``cert.pem``, key in ``cert.key``), made with openssl."""
    openssl = required_tool("openssl", "apt-get install openssl")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "cert.key"), "-out",
         str(d / "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem"
