"""Turning pydantic's validation errors into one message with file and line."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from eib.errors import Origin, UserError, did_you_mean
from eib.load.fields import known_keys
from eib.load.merge import Tree
from eib.load.yamlfile import KeyPath, dotted

_EXPECTED = {
    "bool_type": "expected true or false",
    "int_type": "expected an integer",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "float_type": "expected a number",
}


def recipe_error(err: ValidationError, tree: Tree) -> UserError:
    errors = err.errors()
    first = errors[0]
    loc: KeyPath = _without_union_tags(tuple(first["loc"]))
    if loc and loc[0] == "extra":
        loc = loc[1:]
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    kind = first["type"]
    value = first.get("input")
    if kind == "extra_forbidden":
        parent, name = loc[:-1], str(loc[-1])
        hint = did_you_mean(name, known_keys(parent) or ())
        return UserError(
            f"unknown key '{name}'{more}",
            origin=_origin(tree, loc),
            key=dotted(loc),
            hint=hint,
        )
    if kind == "string_pattern_mismatch" and len(loc) >= 2 and loc[0] == "hooks":
        return UserError(
            f"invalid hook name {value!r}: a hook is a file name in hooks/<group>/ "
            f"(no '/', no '..', no leading '.'){more}",
            origin=_list_item_origin(tree, loc, value),
            key=dotted(loc[:2]),
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        from eib.model.recipe import TARGET_MODELS

        kinds = ", ".join(repr(k) for k in TARGET_MODELS)
        told = (value or {}).get("kind") if isinstance(value, dict) else None
        message = f"unknown kind {told!r}" if kind == "union_tag_invalid" else "no 'kind'"
        return UserError(
            f"{message}: a target's kind is one of {kinds}{more}",
            origin=_origin(tree, loc),
            key=dotted(loc),
        )
    if not loc:
        # A rule of the whole recipe (a model validator): its message names the keys.
        text = str((first.get("ctx") or {}).get("error") or first["msg"])
        return UserError(f"{text}{more}")
    if kind == "missing":
        return UserError(
            f"missing required key '{loc[-1]}'{more}",
            origin=_nearest_origin(tree, loc[:-1]),
            key=dotted(loc),
        )
    if loc and loc[0] == "secrets":
        # A value under secrets: may be the secret itself: name its type only.
        message = f"{_EXPECTED.get(kind, first['msg'])}, got a {type(value).__name__}{more}"
    elif kind in _EXPECTED:
        message = f"{_EXPECTED[kind]}, got {_describe(value)}{more}"
    else:
        message = f"{first['msg']}, got {_describe(value)}{more}"
    origin = _list_item_origin(tree, loc, value) if isinstance(loc[-1], int) else None
    return UserError(message, origin=origin or _origin(tree, loc), key=dotted(loc))


def _without_union_tags(loc: KeyPath) -> KeyPath:
    """pydantic names the chosen member of a tagged union (`targets.0.s3.bucket`): drop it."""
    from eib.model.recipe import TARGET_MODELS

    return tuple(
        part for i, part in enumerate(loc)
        if not (i and isinstance(loc[i - 1], int) and part in TARGET_MODELS)
    )


def _nearest_origin(tree: Tree, loc: KeyPath) -> Origin | None:
    while loc:
        origin = tree.origin(loc)
        if origin is not None:
            return origin
        loc = loc[:-1]
    return None


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _origin(tree: Tree, loc: KeyPath) -> Origin | None:
    return _nearest_origin(tree, loc)


def _list_item_origin(tree: Tree, loc: KeyPath, value: Any) -> Origin | None:
    """The layer that added a bad list item (the final list's index is not the file's)."""
    path = loc
    while path and isinstance(path[-1], int):
        path = path[:-1]
    for event in reversed(tree.history.get(path, [])):
        if isinstance(event.value, list) and value in event.value:
            return event.origin
    return tree.origin(path)
