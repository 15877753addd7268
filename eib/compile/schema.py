"""The JSON Schema of recipe files, generated from the models.

The committed `schema/recipe.schema.json` must equal this output (a test
checks it), so editors validate against exactly what eib accepts.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eib.model.recipe import (
    BuildSettings,
    Demo,
    Flatpak,
    Hooks,
    Image,
    Ostree,
    Publish,
    Secret,
    Variant,
)

# The models of a recipe file as written live here rather than in
# eib.model.recipe: only the schema needs them, and every model class costs
# start-up time of each `eib plan`.


class Overlay(BaseModel):
    """A conditional layer (only for the JSON Schema; the loader reads it raw)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    when: dict[str, str | list[str]]


class RecipeFile(BaseModel):
    """One recipe file as written (for the JSON Schema editors validate against)."""

    model_config = ConfigDict(extra="allow", title="eib recipe", defer_build=True)

    eib: Literal[1] = 1
    extends: list[str] = Field([])
    variant: Variant | None = None
    build: BuildSettings | None = None
    ostree: Ostree | None = None
    image: Image | None = None
    flatpak: Flatpak | None = None
    hooks: Hooks | None = None
    publish: Publish | None = None
    secrets: dict[str, Secret] | None = None
    demo: Demo | None = None
    overlays: list[Overlay] = Field([])


def _allow_add_del(node: object) -> object:
    """Every list field also accepts `{add: [...], del: [...]}`, as the loader does."""
    if isinstance(node, list):
        return [_allow_add_del(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _allow_add_del(value) for key, value in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        for name, prop in props.items():
            if isinstance(prop, dict) and prop.get("type") == "array":
                ops = {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"add": prop, "del": prop},
                }
                props[name] = {"anyOf": [prop, ops], "description": prop.get("description", "")}
    return out


def recipe_schema() -> dict[str, object]:
    schema = _allow_add_del(RecipeFile.model_json_schema())
    assert isinstance(schema, dict)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://eib.invalid/schema/recipe.schema.json"
    schema["additionalProperties"] = {
        "type": "object",
        "description": "A free-form section: its keys are exported to hooks as EIB_<SECTION>_<KEY>",
    }
    return schema


def recipe_schema_json() -> str:
    return json.dumps(recipe_schema(), indent=2, sort_keys=True) + "\n"
