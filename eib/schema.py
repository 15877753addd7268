"""The JSON Schema of recipe files, generated from the models.

The committed `schema/recipe.schema.json` must equal this output (a test
checks it), so editors validate against exactly what eib accepts.
"""

from __future__ import annotations

import json

from eib.model.recipe import RecipeFile


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
