"""Loading, merging, validating and saving settings.

Layers, later ones winning key by key: defaults <- TOML file <- initializationOptions <-
``workspace/didChangeConfiguration``. A layer that does not validate is rejected whole with one
message naming the key and the reason; the previous valid settings stay in force.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

import annotated_types

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from pydantic import BaseModel, ValidationError

from gemma_lsp.errors import ConfigError

from .models import BACKENDS, Settings
from .versions import CONFIG_VERSION, VERSION_KEY, migrate

log = logging.getLogger(__name__)

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
    return describe_error(error.errors()[0])


def describe_error(first: Mapping[str, Any]) -> str:
    """One sentence for one of pydantic's errors, naming the key (``completion.max_tokens``)."""
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
    if first["type"] in _RANGE_ERRORS and (allowed := allowed_range(first["loc"])):
        return f"Invalid setting {key}: {first['input']!r} is out of range (allowed: {allowed})."
    if first["type"] == "extra_forbidden":
        reason = "unknown setting"
    elif first["type"] in _TYPE_ERRORS:
        reason = f"{_TYPE_ERRORS[first['type']]} (got {_literal(first['input'])})"
    elif "input" in first and first["type"] not in ("missing",) and not isinstance(first["input"], dict):
        reason = f"{reason} (got {first['input']!r})"
    return f"Invalid setting {key}: {reason}."


_TYPE_ERRORS = {  # strict types (config/strict.py): said in the words of the file
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "finite_number": "must be a finite number",
}


def _literal(value: Any) -> str:
    """``value`` as the user wrote it (TOML / JSON spelling for booleans and none)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else repr(value)


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def allowed_range(loc: Sequence[str | int]) -> str | None:
    """The range of the numeric setting at ``loc`` (a pydantic error location), e.g. ``0 to 600000``."""
    nodes: list[tuple[Any, list[Any]]] = [(Settings, [])]
    for part in loc:
        found: list[tuple[Any, list[Any]]] = []
        for annotation, _ in nodes:
            for member, meta in _members(annotation):
                if isinstance(member, type) and issubclass(member, BaseModel):
                    field = member.model_fields.get(part) if isinstance(part, str) else None
                    if field is not None:
                        found.append((field.annotation, list(field.metadata)))
                    elif part in (_tag(member, "type"), _tag(member, "backend")):
                        found.append((member, meta))  # the tag pydantic puts in the path of a union
                elif typing.get_origin(member) in (list, tuple, dict) and typing.get_args(member):
                    found.append((typing.get_args(member)[-1], []))  # an item: its index or key is the part
        nodes = found
    for annotation, meta in nodes:
        bounds = meta + [m for _, inner in _members(annotation) for m in inner]
        ge = next((b.ge for b in bounds if isinstance(b, annotated_types.Ge)), None)
        gt = next((b.gt for b in bounds if isinstance(b, annotated_types.Gt)), None)
        le = next((b.le for b in bounds if isinstance(b, annotated_types.Le)), None)
        lt = next((b.lt for b in bounds if isinstance(b, annotated_types.Lt)), None)
        if ge is not None and le is not None:
            return f"from {_number(ge)} to {_number(le)}"
        if (ge is not None or gt is not None) and (le is not None or lt is not None):
            low = f"at least {_number(ge)}" if ge is not None else f"more than {_number(gt)}"
            high = f"at most {_number(le)}" if le is not None else f"less than {_number(lt)}"
            return f"{low}, {high}"
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else repr(value)


def _members(annotation: Any) -> list[tuple[Any, list[Any]]]:
    """The types an annotation may hold (Annotated, Optional and unions unwrapped), each with its metadata."""
    if typing.get_origin(annotation) is Annotated:
        inner, *meta = typing.get_args(annotation)
        return [(member, meta + more) for member, more in _members(inner)]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [found for arg in typing.get_args(annotation) for found in _members(arg)]
    return [(annotation, [])]


def _tag(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields.get(name)
    return field.default if field is not None else None


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


Notice = Callable[[str], None]  # one sentence for the user (the server shows it, the CLI prints it)


def _log_notice(message: str) -> None:
    log.warning(message)


def load_file(path: Path, notify: Notice | None = None, *, rewrite: bool = True) -> dict[str, Any]:
    """The TOML file's settings as a dict ({} when it does not exist); :class:`ConfigError` with one
    sentence naming the file when it cannot be read, is not UTF-8 TOML, or is of a newer version.

    An older file (no ``version`` key: version 0) is migrated: when the result is valid the file is
    rewritten at the current version, the original kept beside it as ``NAME.v0.bak``, and
    ``notify`` gets one sentence saying what changed. ``rewrite=False`` (the read-only commands) leaves
    the file as it is and only says how it was read.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line} is not UTF-8): "
            "save it as UTF-8."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Invalid config file {path}: {exc}.") from None
    table, version, changes = migrate(data, path)
    if version < CONFIG_VERSION and rewrite:
        _rewrite_migrated(path, raw, table, version, changes, notify or _log_notice)
    elif version < CONFIG_VERSION:
        what = "; ".join(changes) if changes else "nothing else changes"
        (notify or _log_notice)(
            f"Config file {path} is version {version}, read as version {CONFIG_VERSION} ({what}); the server or "
            "`gemma-lsp config set` migrates it."
        )
    return table


def _rewrite_migrated(
    path: Path, original: bytes, table: dict[str, Any], version: int, changes: list[str], notify: Notice
) -> None:
    """Keep the original as ``NAME.vN.bak`` and write the migrated table in its place, when it is valid."""
    try:
        validate(table)
    except ConfigError:
        return  # used as migrated in memory; the file stays as the user wrote it until it is valid
    what = "; ".join(changes) if changes else "the version stamped, nothing else changed"
    try:
        backup = keep_original(path, original, version)
        if changes:
            save_file(path, table)
        else:  # only the stamp: the user's own text, comments and order kept
            _write_atomically(path, f"{VERSION_KEY} = {CONFIG_VERSION}\n" + original.decode("utf-8"))
    except OSError as exc:
        notify(
            f"Config file {path} is version {version}, read as version {CONFIG_VERSION} ({what}); "
            f"it could not be rewritten ({exc.strerror or exc})."
        )
        return
    notify(f"Migrated config file {path} from version {version} to {CONFIG_VERSION} ({what}); the original is kept as {backup}.")


def keep_original(path: Path, original: bytes, version: int) -> Path:
    """Write ``original`` (the file as it was at ``version``) beside it as ``NAME.vN.bak``; returns that path."""
    backup = path.with_name(f"{path.name}.v{version}.bak")
    if backup.exists() and backup.read_bytes() != original:
        backup = path.with_name(f"{path.name}.v{version}.{os.getpid()}.bak")
    if not backup.exists():
        backup.write_bytes(original)
    return backup


def save_file(path: Path, settings: Settings | Mapping[str, Any]) -> None:
    """Write settings as TOML atomically, ``version = N`` first: a temp file in the same folder,
    fsync, rename.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    data = settings.model_dump(mode="json", exclude_none=True) if isinstance(settings, Settings) else dict(settings)
    data.pop(VERSION_KEY, None)
    _write_atomically(Path(path), tomli_w.dumps({VERSION_KEY: CONFIG_VERSION, **data}))


def _write_atomically(path: Path, text: str) -> None:
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


def load_settings(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None, notify: Notice | None = None
) -> Settings:
    """Defaults <- the TOML file <- ``overrides``; raises :class:`ConfigError` on a bad layer."""
    settings = apply_layer(Settings(), load_file(path or default_config_path(), notify))
    return apply_layer(settings, overrides)
