"""What a benchmark ran on and what it cost in memory: the machine, the code, the process's peak.

Every stored run carries these (``bench/store.py``), so figures from different machines, builds
or models are never compared as if they were alike.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from gemma_lsp import __version__

# The CPU flags that decide llama.cpp's and numpy's speed (x86 and Arm names as /proc/cpuinfo spells them).
SIMD_FLAGS = (
    "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "neon", "asimd", "asimddp", "sve", "sve2", "i8mm",
)  # fmt: skip


def _cpuinfo(text: str) -> tuple[str, list[str]]:
    """The CPU's model name and its SIMD flags from the text of /proc/cpuinfo."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
            if "pni" in flags:  # x86 kernels spell SSE3 "pni"
                flags.add("sse3")
    return model, [f for f in SIMD_FLAGS if f in flags]


def _memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores (all and usable by this process), SIMD flags, memory, OS, Python, llama.cpp's
    own system line, and ``id``: a hash of what decides speed (CPU, cores, flags, memory), the same
    for two runs on the same machine."""
    try:
        cpu, flags = _cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu, flags = "", []
    cpu = cpu or platform.processor() or platform.machine()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "simd": flags,
        "memory_bytes": _memory_total_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    from gemma_lsp.engine.native import build_info, llama_cpp_available

    if llama_cpp_available():
        info["llama_cpp_python"], info["llama_cpp_system"] = build_info()
    key = f"{cpu}|{info['cores']}|{','.join(flags)}|{(info['memory_bytes'] or 0) >> 30}"
    info["id"] = hashlib.sha256(key.encode()).hexdigest()[:16]
    return info


def code_info() -> dict[str, Any]:
    """gemma-lsp's version and, in a git checkout, its revision (``+dirty`` with local changes)."""
    here = Path(__file__).resolve().parent
    rev = None
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            rev = out.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", str(here.parent)],
                capture_output=True, text=True, timeout=5,
            )  # fmt: skip
            if dirty.returncode == 0 and dirty.stdout.strip():
                rev += "+dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": __version__, "git_rev": rev}


# ------------------------------------------------------------------------------ memory


def reset_peak_rss() -> bool:
    """Start this process's peak-RSS count again (Linux: ``5`` to /proc/self/clear_refs), so the next
    :func:`peak_rss` is one suite's own. False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _vm_hwm_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss() -> dict[str, int | None]:
    """Peak resident memory in bytes: of this process (VmHWM, since :func:`reset_peak_rss`), and of
    the largest child process that has ended (the language server a suite drives, or a peer)."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = _vm_hwm_bytes()
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"process_bytes": own, "children_bytes": children or None}


def model_memory(header: Any, n_ctx: int | None) -> dict[str, int | None]:
    """What a GGUF costs in memory, from its header: the weights (the file's size: llama.cpp maps it)
    and the KV cache, f16 keys and values for every layer (``block_count x head_count_kv x
    (key_length + value_length) x 2 bytes`` per token), per token and for ``n_ctx`` tokens. Sliding-
    window layers keep only their window unless ``swa_full``, so the ``n_ctx`` figure is an upper
    bound for gemma2/gemma3."""
    out: dict[str, int | None] = {"weights_bytes": header.path.stat().st_size}
    layers, heads = header.arch_value("block_count"), header.arch_value("attention.head_count")
    kv_heads = header.arch_value("attention.head_count_kv") or heads
    width = header.arch_value("embedding_length")
    key_len = header.arch_value("attention.key_length") or (width // heads if width and heads else None)
    value_len = header.arch_value("attention.value_length") or key_len
    if not all(isinstance(v, int) and v > 0 for v in (layers, kv_heads, key_len, value_len)):
        return out
    per_token = layers * kv_heads * (key_len + value_len) * 2
    out["kv_cache_bytes_per_token"] = per_token
    if n_ctx:
        out["kv_cache_bytes_at_n_ctx"] = per_token * n_ctx
        out["n_ctx"] = n_ctx
    return out
