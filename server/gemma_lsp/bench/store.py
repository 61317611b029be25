"""The benchmark results store: every ``gemma-lsp bench SUITE`` run, kept in one SQLite file.

One row per run, the same envelope for every suite: when, which suite, the suite's own report
(``figures``, its JSON as printed), the settings it ran with, the model (path, sha256,
architecture, parameters, quantization, size), the machine (``bench/machine.py``), memory (peak
RSS, the model's weights and KV cache), gemma-lsp's version and git revision, and an optional tag.
``record(...)`` is the one call a suite's results go through (``gemma-lsp bench`` makes it for
every suite); ``gemma-lsp bench report`` and ``compare`` read the store back.

Where: ``--store PATH``, else ``$GEMMA_LSP_BENCH_STORE``, else ``bench.sqlite3`` in the user data
dir (``$XDG_DATA_HOME/gemma-lsp``, default ``~/.local/share/gemma-lsp``).

Schema versions (the ``schema_version`` table holds one row): 1 was ``runs(id, time, suite, model,
report)`` with a Unix time and the model's path only; 2 is the envelope above. An older file is
migrated in place when opened; a newer one is refused with a sentence saying so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gemma_lsp.errors import GemmaLspError

STORE_ENV = "GEMMA_LSP_BENCH_STORE"
SCHEMA_VERSION = 2


class StoreError(GemmaLspError):
    """The results store cannot be used: one sentence naming the file and why."""


def existing_store(path: Path | None) -> Path | None:
    """``path`` (or the default store) when it exists; else None, with one sentence on stderr."""
    path = path or default_store_path()
    if path.is_file():
        return path
    print(f"gemma-lsp: there is no bench store at {path} (run a suite first, or give --store PATH)", file=sys.stderr)
    return None


def default_store_path() -> Path:
    """``$GEMMA_LSP_BENCH_STORE``, else ``bench.sqlite3`` in the user data dir."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gemma-lsp" / "bench.sqlite3"


_SCHEMA_V2 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    suite TEXT NOT NULL,
    tag TEXT,
    figures TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    model_path TEXT,
    model_sha256 TEXT,
    model_arch TEXT,
    model_params INTEGER,
    model_quant TEXT,
    model_bytes INTEGER,
    machine_id TEXT,
    machine TEXT NOT NULL DEFAULT '{}',
    memory TEXT NOT NULL DEFAULT '{}',
    version TEXT,
    git_rev TEXT
);
CREATE INDEX runs_by_suite ON runs (suite, id);
CREATE TABLE model_hashes (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
"""

# Version 1 -> 2: the Unix time becomes an ISO time, ``model`` the model's path, ``report`` the
# figures; what version 1 did not keep (machine, memory, settings, hashes) stays empty.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE runs RENAME TO runs_v1;"
    + _SCHEMA_V2
    + """
INSERT INTO runs (id, started, suite, figures, model_path)
    SELECT id, strftime('%Y-%m-%dT%H:%M:%SZ', time, 'unixepoch'), suite, report, model FROM runs_v1 ORDER BY id;
DROP TABLE runs_v1;
"""
)
MIGRATIONS = {1: _MIGRATE_1_TO_2}


@dataclass
class Run:
    """One stored run."""

    id: int
    started: str
    suite: str
    figures: dict[str, Any]
    tag: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    machine_id: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    git_rev: str | None = None

    @property
    def model_name(self) -> str:
        """The model's file name (or ``-``: suites such as sampling have none)."""
        path = self.model.get("path")
        return Path(path).name if path else "-"

    def label(self) -> str:
        return f"#{self.id} {self.suite} {self.model_name}"

    def metrics(self) -> dict[str, float]:
        """Every number of the figures and memory, by a dotted path (``latency_ms.p50``)."""
        out = flatten(self.figures)
        out.update({f"memory.{k}": v for k, v in flatten(self.memory).items()})
        return out


LABEL_KEYS = ("name", "suite", "model", "store", "preset", "shape", "mode", "kind")


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """The numbers in a report by dotted path. A list of objects is keyed by each item's text fields
    (``results[greedy/peaked].ours_ms.p50``, from :data:`LABEL_KEYS`) or its index; lists of numbers (samples) are left out."""
    out: dict[str, float] = {}
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out[prefix] = float(value)
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            names = [item[k] for k in LABEL_KEYS if isinstance(item.get(k), str)]
            out.update(flatten(item, f"{prefix}[{'/'.join(names) if names else i}]"))
    return out


class BenchStore:
    """The SQLite file of stored runs, created or migrated to :data:`SCHEMA_VERSION` when opened."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"The bench store {self.path} is a folder; give a file path (--store PATH).")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA busy_timeout = 5000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The bench store {self.path} is not a results store ({exc}).") from None
        except OSError as exc:
            raise StoreError(f"The bench store {self.path} cannot be opened: {exc.strerror or exc}.") from None

    def _migrate(self) -> None:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            with self.db:
                self.db.executescript(
                    "BEGIN;" + _SCHEMA_V2 + f"CREATE TABLE schema_version (version INTEGER NOT NULL);"
                    f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION}); COMMIT;"
                )
            return
        if "schema_version" not in tables:
            raise StoreError(f"The bench store {self.path} is an SQLite file of something else (no schema_version table).")
        (version,) = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
        if version is None or version > SCHEMA_VERSION:
            raise StoreError(
                f"The bench store {self.path} has schema version {version}, newer than this gemma-lsp knows "
                f"({SCHEMA_VERSION}): upgrade gemma-lsp or use another file (--store PATH)."
            )
        while version < SCHEMA_VERSION:
            self.db.executescript(f"BEGIN; {MIGRATIONS[version]} UPDATE schema_version SET version = {version + 1}; COMMIT;")
            version += 1

    @property
    def schema_version(self) -> int:
        return self.db.execute("SELECT version FROM schema_version").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> BenchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- writing

    def add(
        self,
        suite: str,
        figures: dict[str, Any],
        *,
        started: str | None = None,
        tag: str | None = None,
        settings: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        machine: dict[str, Any] | None = None,
        memory: dict[str, Any] | None = None,
        version: str | None = None,
        git_rev: str | None = None,
    ) -> int:
        """Store one run; its id."""
        model = model or {}
        machine = machine or {}
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO runs (started, suite, tag, figures, settings, model_path, model_sha256, model_arch, "
                "model_params, model_quant, model_bytes, machine_id, machine, memory, version, git_rev) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    started or _now(), suite, tag, json.dumps(figures), json.dumps(settings or {}, default=str, sort_keys=True),
                    model.get("path"), model.get("sha256"), model.get("architecture"), model.get("parameters"),
                    model.get("quantization"), model.get("bytes"), machine.get("id"), json.dumps(machine),
                    json.dumps(memory or {}), version, git_rev,
                ),
            )  # fmt: skip
        return int(cursor.lastrowid)

    def sha256(self, path: Path) -> str:
        """The file's sha256, computed once per (path, size, modification time)."""
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        row = self.db.execute(
            "SELECT sha256 FROM model_hashes WHERE path = ? AND size = ? AND mtime_ns = ?", key
        ).fetchone()
        if row:
            return row[0]
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO model_hashes VALUES (?, ?, ?, ?)", (*key, digest.hexdigest()))
        return digest.hexdigest()

    # ---------------------------------------------------------------------------- reading

    _COLUMNS = (
        "id, started, suite, tag, figures, settings, model_path, model_sha256, model_arch, model_params, "
        "model_quant, model_bytes, machine_id, machine, memory, version, git_rev"
    )

    def runs(
        self, suite: str | None = None, last: int | None = None, tag: str | None = None, ids: Iterable[int] | None = None
    ) -> list[Run]:
        """Stored runs, oldest first: of ``suite``, with ``tag``, the ``ids`` given, the ``last`` N."""
        where, params = [], []
        if suite:
            where.append("suite = ?")
            params.append(suite)
        if tag:
            where.append("tag = ?")
            params.append(tag)
        if ids is not None:
            ids = list(ids)
            where.append(f"id IN ({','.join('?' * len(ids))})")
            params += ids
        sql = f"SELECT {self._COLUMNS} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC"
        if last:
            sql += f" LIMIT {int(last)}"
        return [self._run(row) for row in reversed(self.db.execute(sql, params).fetchall())]

    def get(self, run_id: int) -> Run:
        found = self.runs(ids=[run_id])
        if not found:
            raise StoreError(f"The bench store {self.path} has no run #{run_id}.")
        return found[0]

    def repeats(self, run: Run) -> list[Run]:
        """The runs that repeat ``run``: same suite, settings, model file (by hash, else path), machine
        and code (version and git revision)."""
        model_key, model_value = ("model_sha256", run.model.get("sha256")) if run.model.get("sha256") else (
            "model_path", run.model.get("path"))  # fmt: skip
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM runs WHERE suite = ? AND settings = ? AND machine_id IS ? "
            f"AND {model_key} IS ? AND version IS ? AND git_rev IS ? ORDER BY id",
            (run.suite, json.dumps(run.settings, default=str, sort_keys=True), run.machine_id, model_value, run.version, run.git_rev),
        ).fetchall()
        return [self._run(row) for row in rows]

    @staticmethod
    def _run(row: tuple) -> Run:
        (id_, started, suite, tag, figures, settings, path, sha, arch, params, quant, size, machine_id, machine,
         memory, version, git_rev) = row  # fmt: skip
        model = {"path": path, "sha256": sha, "architecture": arch, "parameters": params, "quantization": quant,
                 "bytes": size}  # fmt: skip
        return Run(
            id=id_, started=started, suite=suite, tag=tag, figures=json.loads(figures), settings=json.loads(settings),
            model={k: v for k, v in model.items() if v is not None}, machine_id=machine_id,
            machine=json.loads(machine), memory=json.loads(memory), version=version, git_rev=git_rev,
        )  # fmt: skip


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------------ recording


def model_info(model: str | Path | None, store: BenchStore | None = None) -> dict[str, Any]:
    """Path, sha256, architecture, parameters, quantization and size of a GGUF (a named model's file
    when it is installed); only what can be read (a missing file gives its path alone)."""
    if model is None:
        return {}
    from gemma_lsp.engine.catalog import models_dir, named

    alias = named(model)
    path = models_dir() / alias.file_name if alias else Path(model).expanduser()
    info: dict[str, Any] = {"path": str(path.resolve() if path.exists() else path)}
    if not path.is_file():
        return info
    from gemma_lsp.engine.gguf import read_header
    from gemma_lsp.errors import ModelUnavailable

    info["bytes"] = path.stat().st_size
    if store is not None:
        info["sha256"] = store.sha256(path)
    try:
        header = read_header(path)
    except ModelUnavailable:
        return info
    info.update(architecture=header.architecture, parameters=header.parameters, quantization=header.quantization)
    return info


def record(
    suite: str,
    figures: dict[str, Any],
    *,
    model: str | Path | None = None,
    settings: dict[str, Any] | None = None,
    n_ctx: int | None = None,
    tag: str | None = None,
    path: Path | None = None,
) -> tuple[int, Path]:
    """Store one suite's figures with the model, settings, machine, memory and code they came from.
    Call it right after the suite ran, in the same process (the peak RSS is this process's and its
    ended children's). Returns the run's id and the store's path; :class:`StoreError` when the
    store cannot be used."""
    from .machine import code_info, machine_info, model_memory, peak_rss

    memory: dict[str, Any] = {"peak_rss": peak_rss()}
    path = path or default_store_path()
    with BenchStore(path) as store:
        info = model_info(model, store)
        if info.get("architecture"):
            from gemma_lsp.engine.gguf import read_header

            memory["model"] = model_memory(read_header(Path(info["path"])), n_ctx)
        code = code_info()
        run_id = store.add(
            suite, figures, tag=tag, settings=settings, model=info, machine=machine_info(), memory=memory,
            version=code["version"], git_rev=code["git_rev"],
        )  # fmt: skip
    return run_id, path


def store_options(argv: list[str]) -> tuple[Path | None, str | None, list[str]]:
    """``--store PATH``, ``--no-store`` and ``--tag TEXT`` taken out of a suite's arguments: the store's
    path (None with ``--no-store``), the tag, and the rest. ValueError names a flag missing its value."""
    path: Path | None = default_store_path()
    tag = None
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        name, eq, value = arg.partition("=")
        if name in ("--store", "--tag"):
            if not eq:
                value = next(it, "")
            if not value or value.startswith("--"):
                raise ValueError(f"{name} needs a value ({'a file path' if name == '--store' else 'a text'})")
            if name == "--store":
                path = Path(value).expanduser()
            else:
                tag = value
        elif arg == "--no-store":
            path = None
        else:
            rest.append(arg)
    return (path if "--no-store" not in argv else None), tag, rest


def timestamp() -> str:
    """A tag-friendly time (``20240611-142501``)."""
    return time.strftime("%Y%m%d-%H%M%S")
