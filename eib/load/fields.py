"""What the recipe models say about a key path: is it a list, is it known.

The merger must know which keys are lists (to apply add/del) before the
models validate anything, so it asks the models themselves instead of
keeping a second table that could drift from them.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

from pydantic import BaseModel

from eib.load.yamlfile import KeyPath
from eib.model.recipe import Recipe


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return annotation


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(_unwrap(annotation)) is list


def _model_of(annotation: Any) -> type[BaseModel] | None:
    ann = _unwrap(annotation)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    ann = _unwrap(annotation)
    if typing.get_origin(ann) is dict:
        return _model_of(typing.get_args(ann)[1])
    return None


@functools.lru_cache(maxsize=1024)
def is_list_path(path: KeyPath) -> bool:
    """True when `path` (section, key, …) names a list field of the recipe.

    Keys of free-form sections are lists when written as lists, so for them
    this returns False and the merger decides by the value's shape.
    """
    model: type[BaseModel] | None = Recipe
    parts = list(path)
    while parts and model is not None:
        name = parts.pop(0)
        if not isinstance(name, str) or name not in model.model_fields:
            return False
        annotation = model.model_fields[name].annotation
        if not parts:
            return _is_list(annotation)
        sub = _model_of(annotation)
        if sub is None:
            sub = _dict_value_model(annotation)
            if sub is None:
                return False
            parts.pop(0)  # the dict key: a remote's or a secret's name
            if not parts:
                return False
        model = sub
    return False


def known_keys(path: KeyPath) -> tuple[str, ...] | None:
    """The keys allowed below `path`, or None when anything goes there."""
    model: type[BaseModel] | None = Recipe
    parts = list(path)
    while parts:
        if model is None:
            return None
        name = parts.pop(0)
        if not isinstance(name, str) or name not in model.model_fields:
            return None
        annotation = model.model_fields[name].annotation
        sub = _model_of(annotation)
        if sub is None:
            sub = _dict_value_model(annotation)
            if sub is None:
                return None
            if not parts:
                return None
            parts.pop(0)
        model = sub
    return tuple(model.model_fields) if model is not None else None
