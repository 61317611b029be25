"""The GGUF header: what a model file says it is, read before llama.cpp sees the file.

A bad path or a file that is not a GGUF becomes one clear sentence (:class:`ModelUnavailable`)
instead of a crash in llama.cpp. Pure Python, no llama.cpp: the embedder and the in-process
backend both use it.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
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


_SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


@dataclass(frozen=True)
class GGUFHeader:
    """What a GGUF file's header says: its metadata (scalars and strings; arrays as their length)
    and every tensor's shape and ggml type, without reading any weights."""

    path: Path
    metadata: dict[str, object]
    tensors: list[tuple[str, tuple[int, ...], int]]  # name, shape, ggml type id

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def parameters(self) -> int:
        """The number of weights: the sum over tensors of the product of their dimensions."""
        return sum(math.prod(shape) for _, shape, _ in self.tensors)

    @property
    def quantization(self) -> str | None:
        """``general.file_type`` by llama.cpp's name (``Q4_K_M``, ``F16``), else the commonest
        tensor type (``Q8_0``)."""
        import gguf

        file_type = self.metadata.get("general.file_type")
        if isinstance(file_type, int) and file_type in gguf.LlamaFileType._value2member_map_:
            name = gguf.LlamaFileType(file_type).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        if not self.tensors:
            return None
        counts: dict[int, int] = {}
        for _, shape, kind in self.tensors:
            counts[kind] = counts.get(kind, 0) + math.prod(shape)
        commonest = max(counts, key=counts.__getitem__)
        known = gguf.GGMLQuantizationType._value2member_map_
        return gguf.GGMLQuantizationType(commonest).name if commonest in known else f"type {commonest}"

    def arch_value(self, key: str) -> object:
        """``<architecture>.<key>`` (e.g. ``block_count``), or None."""
        return self.metadata.get(f"{self.architecture}.{key}")


def read_header(path: Path) -> GGUFHeader:
    """The whole header of a GGUF file (metadata and tensor shapes), or :class:`ModelUnavailable`."""
    read_architecture(path)  # the clear sentence for a missing, unreadable or non-GGUF file
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            n_tensors, n_kv = struct.unpack("<QQ", head[8:24])
            metadata: dict[str, object] = {}
            for _ in range(n_kv):
                key = _read_str(f)
                (vtype,) = struct.unpack("<I", f.read(4))
                if vtype in _SCALAR_FORMATS:
                    fmt = _SCALAR_FORMATS[vtype]
                    (metadata[key],) = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
                elif vtype == 8:
                    metadata[key] = _read_str(f)
                elif vtype == 9:
                    (count,) = struct.unpack("<Q", f.read(12)[4:])  # item type, then count
                    f.seek(-12, os.SEEK_CUR)
                    _skip_value(f, 9)
                    metadata[key] = count
                else:
                    raise ValueError(f"unknown GGUF value type {vtype}")
            tensors = []
            for _ in range(n_tensors):
                name = _read_str(f)
                (n_dims,) = struct.unpack("<I", f.read(4))
                shape = struct.unpack(f"<{n_dims}Q", f.read(8 * n_dims))
                (kind,) = struct.unpack("<I", f.read(4))
                f.seek(8, os.SEEK_CUR)  # the data offset
                tensors.append((name, tuple(shape), kind))
    except (OSError, struct.error, UnicodeDecodeError, ValueError):
        raise ModelUnavailable(f"Model file {path} is not a valid GGUF file (truncated or corrupt).") from None
    return GGUFHeader(path, metadata, tensors)
