"""What ``gemma-lsp config show | validate | set`` does with the config file (the command line
prints it). ``show`` and ``validate`` only read it (an older version is read as migrated, not
rewritten); ``set`` writes it, migrated, and never a file that does not validate."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from pydantic import ValidationError

from gemma_lsp.errors import ConfigError

from .models import Settings
from .store import Notice, deep_merge, describe_error, keep_original, load_file, save_file, validate
from .versions import CONFIG_VERSION, VERSION_KEY, file_version


def show(path: Path, overrides: Mapping[str, Any] | None = None, notify: Notice | None = None) -> str:
    """The effective settings (defaults <- the file <- ``overrides``) as TOML, after a comment that
    says where they come from. :class:`ConfigError` when the file is not valid."""
    table = load_file(path, notify, rewrite=False)
    settings = validate(deep_merge(table, overrides or {}))
    where = f"settings from {path}, defaults for every key it does not set" if path.is_file() else f"defaults (no {path})"
    data = settings.model_dump(mode="json", exclude_none=True)
    return f"# {where}\n" + tomli_w.dumps({VERSION_KEY: CONFIG_VERSION, **data})


def problems(path: Path, notify: Notice | None = None) -> list[str]:
    """One sentence per problem of the file, each naming its key; [] when it is valid."""
    if not path.is_file():
        return [f"Config file {path} does not exist."]
    try:
        table = load_file(path, notify, rewrite=False)
    except ConfigError as exc:
        return [str(exc)]
    try:
        Settings.model_validate(table)
    except ValidationError as exc:
        return [describe_error(error) for error in exc.errors()]
    return []


def toml_value(value: Any) -> str:
    """``value`` written as TOML writes it (``32``, ``true``, ``"text"``)."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def parse_value(text: str) -> Any:
    """A value as TOML reads it (``64``, ``true``, ``0.2``, ``["a", "b"]``, ``"x"``); any other text is a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def set_value(path: Path, key: str, text: str, notify: Notice | None = None) -> Any:
    """Set dotted ``key`` to ``text`` (see :func:`parse_value`) in the file, written atomically;
    returns the value written. :class:`ConfigError` with one sentence, and the file untouched, when the
    key or the value is not valid."""
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise ConfigError(f"{key!r} is not a setting's key: use dotted names such as completion.max_tokens.")
    if parts == [VERSION_KEY]:
        raise ConfigError(f"{VERSION_KEY} is the file's schema version, which gemma-lsp writes itself.")
    value = parse_value(text)
    table = _with_value(load_file(path, lambda message: None, rewrite=False), parts, value, path)
    validate(table)  # the file as it would be, over the defaults: nothing is written when it is not valid
    # Valid: now read it for real (an older version is migrated, its original kept) and write it.
    original = path.read_bytes() if path.is_file() else b""
    table = _with_value(load_file(path, notify), parts, value, path)
    if original and path.read_bytes() == original:  # not rewritten by the migration: older and only valid now
        version = file_version(tomllib.loads(original.decode("utf-8")), path)
        if version < CONFIG_VERSION:
            keep_original(path, original, version)
    save_file(path, table)
    return value


def _with_value(table: dict[str, Any], parts: list[str], value: Any, path: Path) -> dict[str, Any]:
    node = table
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"Cannot set {'.'.join(parts)}: {'.'.join(parts[: i + 1])} is a value in {path}, not a table."
            )
        node = child
    node[parts[-1]] = value
    return table
