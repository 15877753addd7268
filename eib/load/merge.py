"""Merging layers into one tree, with the legacy list semantics and a history.

Scalars: the later layer wins.  Lists: a plain list anywhere is the exact
final list (the last plain list wins, whatever add/del came after it, as the
legacy "plain option wins" rule); otherwise every `add` value counts +1 and
every `del` value −1, adds counted before dels, and values with a positive
count survive in first-added order.  Every change is recorded so
`eib plan --explain` can tell the whole story of a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from eib.errors import Origin, UserError
from eib.load.fields import is_list_path
from eib.load.yamlfile import KeyPath, dotted

Action = Literal["set", "add", "del"]


@dataclass(frozen=True)
class Event:
    """One layer changing one key."""

    action: Action
    value: Any
    origin: Origin
    layer: str


@dataclass
class ListValue:
    """A list field as the sum of its layers' operations."""

    events: list[Event] = field(default_factory=list)

    def resolve(self, values: list[list[Any]] | None = None) -> list[Any]:
        """The final list; `values` (per event) replaces event values when interpolated."""
        vals = values if values is not None else [list(e.value) for e in self.events]
        plain = [v for e, v in zip(self.events, vals, strict=True) if e.action == "set"]
        if plain:
            return list(plain[-1])
        counts: dict[str, int] = {}
        first: dict[str, Any] = {}
        for action in ("add", "del"):
            for event, items in zip(self.events, vals, strict=True):
                if event.action != action:
                    continue
                for item in items:
                    key = _key(item)
                    first.setdefault(key, item)
                    counts[key] = counts.get(key, 0) + (1 if action == "add" else -1)
        return [first[k] for k, n in counts.items() if n > 0]


def _key(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)


@dataclass
class Tree:
    """The merged recipe before interpolation and validation."""

    data: dict[str, Any] = field(default_factory=dict)
    history: dict[KeyPath, list[Event]] = field(default_factory=dict)

    def origin(self, path: KeyPath) -> Origin | None:
        """Where `path` (or its nearest recorded ancestor) was last set."""
        while path:
            events = self.history.get(path)
            if events:
                return events[-1].origin
            path = path[:-1]
        return None


def merge_into(
    tree: Tree,
    data: dict[str, Any],
    origins: dict[KeyPath, Origin],
    layer: str,
    prefix: KeyPath = (),
    origin_prefix: KeyPath = (),
) -> None:
    """Apply one layer's `data` onto `tree` (in place)."""
    _merge_dict(tree, tree.data, data, origins, layer, prefix, origin_prefix)


def _origin(origins: dict[KeyPath, Origin], path: KeyPath, fallback: str) -> Origin:
    while path:
        if path in origins:
            return origins[path]
        path = path[:-1]
    return Origin(fallback)


def _merge_dict(
    tree: Tree,
    target: dict[str, Any],
    data: dict[str, Any],
    origins: dict[KeyPath, Origin],
    layer: str,
    path: KeyPath,
    opath: KeyPath,
) -> None:
    for key, value in data.items():
        kpath = (*path, key)
        okey = (*opath, key)
        origin = _origin(origins, okey, layer)
        if is_list_path(kpath) or (_is_free_form(kpath) and _looks_like_list(value)):
            lv = target.get(key)
            if not isinstance(lv, ListValue):
                lv = ListValue()
                target[key] = lv
            for event in _list_events(value, kpath, origin, origins, okey, layer):
                lv.events.append(event)
                tree.history.setdefault(kpath, []).append(event)
        elif isinstance(value, dict):
            sub = target.get(key)
            if not isinstance(sub, dict):
                sub = {}
                target[key] = sub
            tree.history.setdefault(kpath, []).append(Event("set", None, origin, layer))
            _merge_dict(tree, sub, value, origins, layer, kpath, okey)
        else:
            target[key] = value
            tree.history.setdefault(kpath, []).append(Event("set", value, origin, layer))


def _is_free_form(path: KeyPath) -> bool:
    from eib.model.recipe import Recipe

    return bool(path) and path[0] not in Recipe.model_fields


def _looks_like_list(value: Any) -> bool:
    return isinstance(value, list) or (
        isinstance(value, dict) and bool(value) and set(value) <= {"add", "del"}
    )


def _list_events(
    value: Any,
    path: KeyPath,
    origin: Origin,
    origins: dict[KeyPath, Origin],
    opath: KeyPath,
    layer: str,
) -> list[Event]:
    key = dotted(path)
    if isinstance(value, list):
        return [Event("set", value, origin, layer)]
    if value is None:
        return [Event("set", [], origin, layer)]
    if not isinstance(value, dict):
        raise UserError(
            f"expected a list or {{add: [...], del: [...]}}, got {type(value).__name__} {value!r}",
            origin=origin,
            key=key,
        )
    events = []
    for op, items in value.items():
        op_origin = _origin(origins, (*opath, op), layer)
        if op not in ("add", "del"):
            raise UserError(
                f"unknown list operation '{op}': use 'add' or 'del', or give a plain list",
                origin=op_origin,
                key=key,
            )
        if items is None:
            items = []
        if not isinstance(items, list):
            raise UserError(
                f"'{op}' takes a list, not {type(items).__name__} {items!r} "
                f"(write {op}: [{items}])",
                origin=op_origin,
                key=key,
            )
        events.append(Event(op, items, op_origin, layer))
    return events
