"""``gemma-lsp doctor``: is this machine set up to serve? One line per check, with what to do.

Checks read and probe only: the model file's header (not the weights), llama.cpp's build
flags, the cores, the memory store (a Redis PING with a short timeout, or the SQLite file's
folder), the prompt templates (each one parsed), and the remote endpoints (``GET /models``).
Nothing is written or assembled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
_SIMD = ("AVX2", "AVX", "FMA", "F16C", "NEON")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str  # what was found, or what is wrong and what to do

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<9} {self.detail}"


def check_model(model) -> Check:
    if model.backend != "llama.cpp":
        return check_remote(model)
    from gemma_lsp.engine.catalog import models_dir, named
    from gemma_lsp.engine.gguf import read_architecture
    from gemma_lsp.errors import ModelUnavailable

    alias = named(model.path)
    if alias is not None:
        path = models_dir() / alias.file_name
        if not path.is_file():
            return Check("model", WARN, f"{alias.alias} is not assembled yet: the first `gemma-lsp serve` or `demo` does it once")
    else:
        path = Path(model.path).expanduser()
    try:
        arch = read_architecture(path)
    except ModelUnavailable as exc:
        return Check("model", FAIL, f"{exc} Set model.path to a Gemma GGUF file, or leave it empty for gemma3-270m.")
    size = path.stat().st_size / 1e6
    if not arch.startswith("gemma"):
        return Check("model", WARN, f"{path} is a {arch} model ({size:.0f} MB): prompts are written for Gemma")
    return Check("model", OK, f"{path} ({arch}, {size:.0f} MB)")


def check_remote(model) -> Check:
    from gemma_lsp.engine.endpoints import probe

    urls = list(getattr(model, "base_urls", None) or []) or [model.base_url]
    down = [f"{url} ({error})" for url in urls if (error := probe(url)) is not None]
    if len(down) == len(urls):
        return Check("model", FAIL, f"no inference server answers: {', '.join(down)}; start one or fix model.base_url")
    if down:
        return Check("model", WARN, f"{len(urls) - len(down)} of {len(urls)} servers answer; down: {', '.join(down)}")
    return Check("model", OK, f"remote: {len(urls)} server(s) answer")


def check_build() -> Check:
    from gemma_lsp.engine.native import build_info

    try:
        version, info = build_info()
    except Exception as exc:  # noqa: BLE001 - a broken install is what this check reports
        return Check("llama.cpp", FAIL, f"llama-cpp-python does not load ({exc}): run `make install` again")
    flags = [f for f in _SIMD if f"{f} = 1" in info]
    if not flags:
        return Check("llama.cpp", WARN, f"{version} built without SIMD ({info.strip()}): prompts will evaluate slowly")
    return Check("llama.cpp", OK, f"{version}, SIMD: {', '.join(flags)}")


def check_threads(model) -> Check:
    cores = os.cpu_count() or 1
    threads = getattr(model, "n_threads", None)
    if threads and threads > cores:
        return Check("threads", WARN, f"model.n_threads = {threads} but the machine has {cores} cores: set it to {cores} or less")
    chosen = f"{threads} (model.n_threads)" if threads else "chosen per request from the cores' load"
    return Check("threads", OK, f"{cores} cores; threads: {chosen}")


def check_memory(memory) -> Check:
    if memory.url:
        from gemma_lsp.memory.redis_store import ping, redact_url

        url = redact_url(memory.url)
        try:
            ping(memory)
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            return Check("memory", FAIL, f"Redis at {url} does not answer ({type(exc).__name__}): start redis-server, "
                         "or remove memory.url to use the embedded SQLite store")
        return Check("memory", OK, f"Redis at {url} answers")
    folder = Path(memory.sqlite_path).expanduser().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return Check("memory", FAIL, f"cannot write {memory.sqlite_path}: set memory.sqlite_path to a writable place")
    return Check("memory", OK, f"embedded SQLite store at {memory.sqlite_path}")


def check_prompts(prompts) -> list[Check]:
    from gemma_lsp.prompts import library_for

    status = library_for(prompts).status()
    broken = [t for t in status if t["error"]]
    checks = [Check("prompts", FAIL, f"{t['name']} ({t['path']}): {t['error']}") for t in broken]
    if not broken:
        checks.append(Check("prompts", OK, f"{len(status)} templates load"))
    return checks


def check_index(settings, workspace: Path | None) -> Check:
    if not settings.index.enabled:
        return Check("index", OK, "workspace indexing is off (index.enabled = false)")
    if workspace is None:
        return Check("index", OK, "on: the editor's workspace folders are indexed when it opens them")
    if not workspace.is_dir():
        return Check("index", FAIL, f"--workspace {workspace} is not a folder")
    return Check("index", OK, f"on: {workspace} is indexed when an editor opens it")


def run(settings, workspace: Path | None = None) -> list[Check]:
    return [
        check_model(settings.model),
        check_build(),
        check_threads(settings.model),
        check_memory(settings.memory),
        *check_prompts(settings.prompts),
        check_index(settings, workspace),
    ]
