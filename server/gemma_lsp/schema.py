"""The settings as a JSON schema, for clients that build their settings UI from it.

``gemma-lsp schema`` prints :func:`settings_schema`; the VS Code extension turns it into its
``contributes.configuration`` (``vscode-extension/scripts/settings.mjs``). It is pydantic's
schema of :class:`~gemma_lsp.config.Settings` with two additions:

- defaults made by a factory are filled in when they are plain data (the built-in sampler presets,
  ``sampling.features``, ``prompts.dirs``); a factory that builds a path from the environment
  (``memory.sqlite_path`` under the user's cache folder) gives no default here, so the schema is
  the same on every machine;
- ``$schema`` names the JSON Schema draft.

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
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
