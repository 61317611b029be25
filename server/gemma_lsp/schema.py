"""The settings as a JSON schema, for clients that build their settings UI from it.

``gemma-lsp schema`` prints :func:`settings_schema`; the VS Code extension turns it into its
``contributes.configuration`` (``vscode-extension/scripts/settings.mjs``). It is pydantic's
schema of :class:`~gemma_lsp.config.Settings` with two additions:

- defaults made by a factory are filled in when they are plain data (the built-in sampler presets,
  ``sampling.features``, ``prompts.dirs``); a factory that builds a path from the environment
  (``memory.sqlite_path`` under the user's cache folder) gives no default here, so the schema is
  the same on every machine;
- ``$schema`` names the JSON Schema draft;
- the ``model`` section, a union of one settings class per backend (told apart by ``backend``),
  is one object with every backend's keys, as settings UIs can show it: ``backend`` lists the
  backends, a key of one backend only says so in its description, and only the default
  backend's keys give defaults (the server still refuses a key its backend does not have).

Every setting applies to a running server (``Services.apply``): none needs a restart.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from gemma_lsp.config import Settings


class _SettingsSchema(GenerateJsonSchema):
    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()
        # Plain containers only: a model's fields carry their own defaults, a path is the machine's.
        return value if isinstance(value, (dict, list, tuple)) else NoDefault


def settings_schema() -> dict[str, Any]:
    """The JSON schema of every setting (draft 2020-12, as pydantic writes it)."""
    schema = Settings.model_json_schema(schema_generator=_SettingsSchema)
    _one_model_section(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _one_model_section(schema: dict[str, Any]) -> None:
    """Replace the backends' union under ``model`` by one object with every backend's keys."""
    node = schema["properties"]["model"]
    refs = [member["$ref"].rsplit("/", 1)[1] for member in node.get("oneOf", ())]
    if len(refs) < 2:
        return
    members = [schema["$defs"][ref] for ref in refs]
    names = [member["properties"]["backend"]["const"] for member in members]
    default = Settings().model.backend
    properties: dict[str, Any] = {}
    for name, member in zip(names, members):
        for key, prop in member["properties"].items():
            if key == "backend" or key in properties:
                continue
            owners = [n for n, m in zip(names, members) if key in m["properties"]]
            prop = dict(prop)
            if len(owners) < len(names):
                what = prop.get("description") or prop.get("title", key)
                prop["description"] = f"({', '.join(owners)} backend) {what}"
            if name != default:
                prop.pop("default", None)
            properties[key] = prop
    backend = {
        "description": (
            f"Which backend runs the model: {', '.join(names[:-1])} or {names[-1]} (a key of one backend only "
            "says which in its description)."
        ),
        "enum": names,
        "default": default,
        "title": "Backend",
        "type": "string",
    }
    schema["$defs"]["ModelSettings"] = {
        "additionalProperties": False,
        "description": "The model and the backend that runs it; each backend has keys of its own.",
        "properties": {"backend": backend, **properties},
        "title": "ModelSettings",
        "type": "object",
    }
    for ref in refs:
        del schema["$defs"][ref]
    schema["properties"]["model"] = {"$ref": "#/$defs/ModelSettings"}
