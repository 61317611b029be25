"""Every numeric setting has a sane range, and no setting takes a value of the wrong type.

Both walk the settings' JSON schema (what editors build their settings UIs from), so a setting
added later without bounds, or a number that would take ``true``, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gemma_lsp.config import Settings, apply_layer
from gemma_lsp.errors import ConfigError
from gemma_lsp.schema import settings_schema

SCHEMA = settings_schema()


def numeric_nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """(schema path, node) of every integer or number anywhere in the schema, sampler specs included."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            yield path, node
        for key, value in node.items():
            yield from numeric_nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from numeric_nodes(value, f"{path}[{i}]")


def resolve(node: dict) -> dict:
    if "$ref" in node:
        return SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def leaves(node: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], set[str]]]:
    """(key path, the JSON types it takes) of every setting that is not itself a section."""
    for name, prop in resolve(node)["properties"].items():
        target = resolve(prop)
        if target.get("type") == "object" and "properties" in target:
            yield from leaves(target, (*path, name))
        else:
            kinds = {m.get("type") for m in prop.get("anyOf", [prop])} - {None, "null"}
            yield (*path, name), kinds
            if (*path, name) == ("model", "n_ctx"):  # a key every backend has: also seen with the other one
                yield ("model", "openai", name), kinds


def owner(path: tuple[str, ...]) -> str | None:
    """The backend a ``model`` key belongs to when only one has it (its description says which)."""
    if path[:2] == ("model", "openai"):
        return "openai"
    description = SCHEMA["$defs"]["ModelSettings"]["properties"].get(path[-1], {}).get("description", "")
    return description[1:].split(" backend)")[0] if path[0] == "model" and description.startswith("(") else None


def nested(path: tuple[str, ...], value: Any) -> dict:
    """The layer that sets ``path`` to ``value`` (with the backend and server a model key needs)."""
    if owner(path) == "openai":
        return {"model": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", path[-1]: value}}
    for part in reversed(path):
        value = {part: value}
    return value


def key(path: tuple[str, ...]) -> str:
    return ".".join(p for p in path if p != "openai")


def test_every_numeric_setting_has_a_lower_and_an_upper_bound():
    found = list(numeric_nodes(SCHEMA))
    assert len(found) > 80  # the walk reaches every section and every sampler spec
    unbounded = [
        path for path, node in found
        if not ({"minimum", "exclusiveMinimum"} & node.keys() and {"maximum", "exclusiveMaximum"} & node.keys())
    ]  # fmt: skip
    assert unbounded == []


NUMERIC = [path for path, kinds in leaves(SCHEMA) if kinds & {"integer", "number"}]
BOOLEAN = [path for path, kinds in leaves(SCHEMA) if kinds == {"boolean"}]


def test_the_walk_sees_the_settings():
    assert ("completion", "max_tokens") in NUMERIC and ("memory", "ranking", "tier_weights", "episodic") in NUMERIC
    assert ("completion", "token_healing") in BOOLEAN and len(NUMERIC) > 50


@pytest.mark.parametrize("path", NUMERIC, ids=".".join)
def test_no_number_is_read_from_a_boolean_or_a_string(path):
    for wrong, said in ((True, "got true"), ("64", "got '64'")):
        with pytest.raises(ConfigError) as err:
            apply_layer(Settings(), nested(path, wrong))
        assert str(err.value).startswith(f"Invalid setting {key(path)}: must be a") and said in str(err.value)


@pytest.mark.parametrize("path", NUMERIC, ids=".".join)
def test_a_huge_number_is_refused_with_the_allowed_range(path):
    with pytest.raises(ConfigError) as err:
        apply_layer(Settings(), nested(path, 1e308 if "integer" not in dict(leaves(SCHEMA))[path] else 10**30))
    message = str(err.value)
    assert message.startswith(f"Invalid setting {key(path)}: ") and "is out of range (allowed: " in message


@pytest.mark.parametrize("path", BOOLEAN, ids=".".join)
def test_no_boolean_is_read_from_a_number_or_a_string(path):
    for wrong in (1, "true"):
        with pytest.raises(ConfigError, match=rf"^Invalid setting {key(path)}: must be true or false"):
            apply_layer(Settings(), nested(path, wrong))
