"""`gemma-lsp schema`: the settings' JSON schema that editors build their settings from.

The VS Code extension generates its settings from this output; its own tests check that its
package.json is in sync with it (vscode-extension/test/unit/settingsSchema.test.ts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gemma_lsp.config import Settings
from gemma_lsp.config.sampling import default_presets
from gemma_lsp.schema import settings_schema


def run_schema(env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gemma_lsp", "schema"], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})},
    )


def resolve(schema: dict, node: dict) -> dict:
    """``node`` with its ``$ref`` (or a one-member ``oneOf`` of one, as for ``model``) followed."""
    if "$ref" in node:
        return schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if len(node.get("oneOf", ())) == 1:
        return resolve(schema, node["oneOf"][0])
    return node


def leaves(schema: dict, node: dict, path: tuple[str, ...] = ()):
    """(dotted path, property schema) of every setting that is not itself a section."""
    for name, prop in resolve(schema, node)["properties"].items():
        target = resolve(schema, prop)
        if target.get("type") == "object" and "properties" in target:
            yield from leaves(schema, target, (*path, name))
        else:
            yield ".".join((*path, name)), prop


def test_the_command_prints_the_schema_as_json():
    proc = run_schema()
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == settings_schema()
    assert set(printed["properties"]) == set(Settings.model_fields)
    assert printed["$schema"].startswith("https://json-schema.org/")


def test_the_schema_is_the_same_on_every_machine(tmp_path):
    """No default that comes from the environment (the cache folder of memories) leaks into it."""
    here = run_schema()
    elsewhere = run_schema({"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "c"), "XDG_CONFIG_HOME": str(tmp_path / "k")})
    assert here.returncode == elsewhere.returncode == 0
    assert here.stdout == elsewhere.stdout
    assert str(tmp_path) not in elsewhere.stdout
    sqlite = dict(leaves(printed := json.loads(here.stdout), printed))["memory.sqlite_path"]
    assert "default" not in sqlite and sqlite["type"] == "string"


def test_every_default_in_the_schema_is_the_settings_default():
    schema = settings_schema()
    defaults = Settings().model_dump(mode="json")
    checked = 0
    for dotted, prop in leaves(schema, schema):
        if "default" not in prop:
            continue
        value = defaults
        for part in dotted.split("."):
            value = value[part]
        assert prop["default"] == value, dotted
        checked += 1
    assert checked > 60  # nearly every setting has one


def test_factory_defaults_that_are_plain_data_are_filled_in():
    props = dict(leaves(schema := settings_schema(), schema))
    presets = props["sampling.presets"]["default"]
    assert set(presets) == set(default_presets()) and presets["greedy"] == [{"type": "greedy"}]
    assert props["sampling.features"]["default"] == {"completion": "completion", "chat": "chat"}
    assert props["prompts.dirs"]["default"] == []


def test_every_section_refuses_unknown_keys_and_the_model_names_its_backend():
    schema = settings_schema()
    for name in Settings.model_fields:
        section = resolve(schema, schema["properties"][name])
        assert section.get("additionalProperties") is False, name
    model = dict(leaves(schema, schema))
    assert model["model.backend"]["enum"] == ["llama.cpp", "openai"] and model["model.backend"]["default"] == "llama.cpp"
    assert set(resolve(schema, schema["properties"]["model"])["properties"]) >= {"path", "n_ctx", "n_threads", "base_url"}
    assert model["model.base_url"]["description"].startswith("(openai backend) ") and "default" not in model["model.base_url"]
