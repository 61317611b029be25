"""The config file's schema version and the migrations between versions.

A file written by gemma-lsp starts with ``version = N`` (:data:`CONFIG_VERSION`). A file without
it is version 0: the settings as they were before sampler presets, when
``completion.temperature`` chose how completions were sampled. Loading an older file migrates
it (``store.load_file`` keeps the original beside it as ``config.toml.v0.bak``); a file newer
than this gemma-lsp is refused, since its keys may mean something this version does not know.

A migration is a function of the previous version's table that returns the next version's
table and one phrase per change it made, for the notice the user sees.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gemma_lsp.errors import ConfigError

CONFIG_VERSION = 1
VERSION_KEY = "version"

# The preset a v0 ``completion.temperature`` above 0 becomes: that temperature, then a draw.
V0_TEMPERATURE_PRESET = "v0-temperature"


def _v0_to_v1(data: dict[str, Any]) -> list[str]:
    """``completion.temperature`` (0 = greedy) became sampler presets: ``completion.preset``."""
    completion = data.get("completion")
    if not isinstance(completion, dict) or "temperature" not in completion:
        return []
    temperature = completion.pop("temperature")
    if completion.get("preset") is not None:
        return [f"completion.temperature = {temperature!r} was dropped (completion.preset already chooses the sampler)"]
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0:
        completion["preset"] = "greedy"
        return [f"completion.temperature = {temperature!r} became completion.preset = \"greedy\""]
    sampling = data.setdefault("sampling", {})
    presets = sampling.setdefault("presets", {}) if isinstance(sampling, dict) else None
    if not isinstance(presets, dict):
        return [f"completion.temperature = {temperature!r} was dropped ([sampling] is not a table)"]
    presets[V0_TEMPERATURE_PRESET] = [{"type": "temperature", "temperature": temperature}, {"type": "distribution"}]
    completion["preset"] = V0_TEMPERATURE_PRESET
    return [
        f"completion.temperature = {temperature!r} became completion.preset = \"{V0_TEMPERATURE_PRESET}\" "
        f"(sampling.presets.{V0_TEMPERATURE_PRESET}: that temperature, then a draw)"
    ]


# MIGRATIONS[n] turns a version-n table into a version n+1 one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], list[str]]] = {0: _v0_to_v1}
assert sorted(MIGRATIONS) == list(range(CONFIG_VERSION)), "one migration per version step"


def file_version(data: dict[str, Any], path: Path | str) -> int:
    """The version the table says it is (0 without the key); :class:`ConfigError` when it is not a
    version this gemma-lsp can read."""
    version = data.get(VERSION_KEY, 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ConfigError(
            f"Invalid config file {path}: {VERSION_KEY} must be a whole number such as {CONFIG_VERSION} (got {version!r})."
        )
    if version > CONFIG_VERSION:
        raise ConfigError(
            f"Config file {path} is version {version}, newer than this gemma-lsp reads (version {CONFIG_VERSION}): "
            f"upgrade gemma-lsp, or use a file written for version {CONFIG_VERSION}."
        )
    return version


def migrate(data: dict[str, Any], path: Path | str) -> tuple[dict[str, Any], int, list[str]]:
    """``data`` brought to :data:`CONFIG_VERSION` without its version key: (table, the version it
    was, what changed). ``data`` itself is left as it is."""
    version = file_version(data, path)
    table = copy.deepcopy(data)
    table.pop(VERSION_KEY, None)
    changes: list[str] = []
    for step in range(version, CONFIG_VERSION):
        changes += MIGRATIONS[step](table)
    return table, version, changes
