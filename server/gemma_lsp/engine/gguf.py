"""The GGUF header: what a model file says it is, read before llama.cpp sees the file.

A bad path or a file that is not a GGUF becomes one clear sentence (:class:`ModelUnavailable`)
instead of a crash in llama.cpp. Pure Python, no llama.cpp: the embedder and the in-process
backend both use it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from gemma_lsp.errors import ModelUnavailable

_GGUF_MAGIC = b"GGUF"


def read_architecture(path: Path) -> str:
    """The ``general.architecture`` of a GGUF file, or :class:`ModelUnavailable` saying why not."""
    if not path.exists():
        raise ModelUnavailable(f"Model file {path} does not exist.")
    if path.is_dir():
        raise ModelUnavailable(f"Model path {path} is a folder, not a GGUF file.")
    try:
        with open(path, "rb") as f:
            head = f.read(4 + 4 + 8 + 8)
            if len(head) < 24 or head[:4] != _GGUF_MAGIC:
                raise ModelUnavailable(f"Model file {path} is not a GGUF file.")
            version = struct.unpack("<I", head[4:8])[0]
            if version < 2:
                raise ModelUnavailable(f"Model file {path} is GGUF version {version}, which is too old.")
            n_kv = struct.unpack("<Q", head[16:24])[0]
            for _ in range(min(n_kv, 4096)):
                key = _read_str(f)
                (vtype,) = struct.unpack("<I", f.read(4))
                if key == "general.architecture" and vtype == 8:
                    return _read_str(f)
                _skip_value(f, vtype)
    except PermissionError:
        raise ModelUnavailable(f"Model file {path} is not readable (permission denied).") from None
    except (OSError, struct.error, UnicodeDecodeError, ValueError):
        raise ModelUnavailable(f"Model file {path} is not a valid GGUF file (truncated or corrupt).") from None
    raise ModelUnavailable(f"Model file {path} does not say which architecture it is.")


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _read_str(f) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    if n > 1 << 24:
        raise ValueError("string too long")
    return f.read(n).decode("utf-8")


def _skip_value(f, vtype: int) -> None:
    if vtype in _SCALAR_SIZES:
        f.seek(_SCALAR_SIZES[vtype], os.SEEK_CUR)
    elif vtype == 8:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, os.SEEK_CUR)
    elif vtype == 9:
        (item_type,) = struct.unpack("<I", f.read(4))
        (count,) = struct.unpack("<Q", f.read(8))
        if item_type in _SCALAR_SIZES:
            f.seek(_SCALAR_SIZES[item_type] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, item_type)
    else:
        raise ValueError(f"unknown GGUF value type {vtype}")
