"""Loading, merging, validating and saving settings.

Layers, later ones winning key by key: defaults <- TOML file <- initializationOptions <-
``workspace/didChangeConfiguration``. A layer that does not validate is rejected whole with one
message naming the key and the reason; the previous valid settings stay in force.
"""

from __future__ import annotations

import os
import sys
import tempfile
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

from .models import BACKENDS, Settings

CONFIG_ENV = "GEMMA_LSP_CONFIG"


def default_config_path() -> Path:
    """The TOML file: $GEMMA_LSP_CONFIG, else the user config dir."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-lsp" / "config.toml"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gemma-lsp"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``override``'s keys over ``base``'s, merging nested tables key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    if first["type"] == "union_tag_invalid":  # [model] backend = "unknown"
        ctx = first.get("ctx", {})
        return f"Invalid setting {'.'.join(map(str, loc))}.backend: there is no backend {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})."
    if loc[:1] == ["model"] and len(loc) > 1 and loc[1] in BACKENDS:
        del loc[1]  # the tag pydantic puts in the path of a tagged union
    key = ".".join(str(p) for p in loc)
    reason = first["msg"].removeprefix("Value error, ")
    if not key:  # a rule across several keys: the reason names them
        return f"Invalid settings: {reason}."
    if first["type"] == "extra_forbidden":
        reason = "unknown setting"
    elif "input" in first and first["type"] not in ("missing",) and not isinstance(first["input"], dict):
        reason = f"{reason} (got {first['input']!r})"
    return f"Invalid setting {key}: {reason}."


def validate(data: Mapping[str, Any]) -> Settings:
    """Settings from a plain dict, or :class:`ConfigError` naming the first bad key."""
    try:
        return Settings.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def apply_layer(current: Settings, layer: Mapping[str, Any] | None) -> Settings:
    """``current`` with ``layer`` merged over it; :class:`ConfigError` leaves ``current`` untouched."""
    if not layer:
        return current
    if not isinstance(layer, Mapping):
        raise ConfigError(f"Invalid settings: expected a table of settings, got {type(layer).__name__}.")
    base = current.model_dump(mode="json", exclude_none=False)
    layer = _drop_nones_at_top(layer)
    model = layer.get("model")
    if isinstance(model, Mapping) and model.get("backend", base["model"]["backend"]) != base["model"]["backend"]:
        del base["model"]  # another backend: its own keys and defaults, none of the previous one's
    return validate(deep_merge(base, layer))


def _drop_nones_at_top(layer: Mapping[str, Any]) -> dict[str, Any]:
    # Clients often send null for sections they do not know about; treat that as "not set".
    return {k: v for k, v in layer.items() if v is not None}


def load_file(path: Path) -> dict[str, Any]:
    """The TOML file as a dict ({} when it does not exist); :class:`ConfigError` when unreadable."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Invalid config file {path}: {exc}.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}.") from None


def save_file(path: Path, settings: Settings | Mapping[str, Any]) -> None:
    """Write settings as TOML atomically: a temp file in the same folder, fsync, rename.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    data = settings.model_dump(mode="json", exclude_none=True) if isinstance(settings, Settings) else dict(settings)
    text = tomli_w.dumps(data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults <- the TOML file <- ``overrides``; raises :class:`ConfigError` on a bad layer."""
    settings = apply_layer(Settings(), load_file(path or default_config_path()))
    return apply_layer(settings, overrides)
