"""`${key}` and `${section:key}` interpolation over the merged tree.

Resolved after all layers are merged, so a later layer can change what an
earlier value expands to (as configparser's ExtendedInterpolation does for
the legacy tree).  `${key}` names a sibling in the same mapping;
`${section:key.sub}` a key of a top-level section; `$$` is a literal `$`.
Values inside list add/del operations are expanded before they are counted.
"""

from __future__ import annotations

import re
from typing import Any

from eib.errors import Origin, UserError
from eib.limits import check_length
from eib.load.merge import ListValue, Tree
from eib.load.yamlfile import KeyPath, dotted

_REF = re.compile(r"\$(?:(\$)|\{([^}]*)\})")
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$")


class Interpolator:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._done: dict[KeyPath, Any] = {}
        self._active: list[KeyPath] = []

    def resolve_all(self) -> dict[str, Any]:
        return self._resolve_dict(self.tree.data, ())

    def _resolve_dict(self, data: dict[str, Any], path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            kpath = (*path, key)
            if isinstance(value, dict):
                out[key] = self._resolve_dict(value, kpath)
            else:
                out[key] = self.value_at(kpath)
        return out

    def _lookup(self, path: KeyPath) -> Any:
        node: Any = self.tree.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise KeyError(path)
            node = node[part]
        return node

    def value_at(self, path: KeyPath) -> Any:
        if path in self._done:
            return self._done[path]
        if path in self._active:
            cycle = " → ".join(dotted(p) for p in (*self._active[self._active.index(path) :], path))
            raise UserError(
                f"interpolation cycle: {cycle}",
                origin=self.tree.origin(path),
                key=dotted(path),
            )
        raw = self._lookup(path)
        self._active.append(path)
        try:
            if isinstance(raw, ListValue):
                values = [[self._expand(v, path, e.origin) for v in e.value] for e in raw.events]
                result: Any = raw.resolve(values)
            elif isinstance(raw, dict):
                result = self._resolve_dict(raw, path)
            else:
                result = self._expand(raw, path, self.tree.origin(path))
        finally:
            self._active.pop()
        self._done[path] = result
        return result

    def _expand(self, value: Any, path: KeyPath, origin: Origin | None) -> Any:
        if section_is_secret(path):
            return value  # never interpolated, so never quoted in an error either
        if isinstance(value, list):
            return [self._expand(v, path, origin) for v in value]
        if isinstance(value, dict):
            return {k: self._expand(v, path, origin) for k, v in value.items()}
        if not isinstance(value, str) or "$" not in value:
            return value
        whole = _REF.fullmatch(value)
        if whole and whole.group(2) is not None:
            return self._reference(whole.group(2), path, origin)

        def substitute(match: re.Match[str]) -> str:
            token = match.group(0)
            if token == "$$":
                return "$"
            if token == "$":
                raise UserError(
                    f"bad interpolation syntax in {value!r}: '$' must be followed by "
                    "'{key}', '{section:key}' or '$'",
                    origin=origin,
                    key=dotted(path),
                )
            return _as_text(self._reference(match.group(1), path, origin))

        expanded = _TOKEN.sub(substitute, value)
        # Each value is checked as it is expanded, so references that double a
        # value at every step stop at the first one over the limit.
        check_length(expanded, origin=origin, key=dotted(path))
        return expanded

    def _reference(self, ref: str, path: KeyPath, origin: Origin | None) -> Any:
        if ":" in ref:
            section, _, key = ref.partition(":")
            target: KeyPath = (section, *key.split("."))
        else:
            target = (*_mapping_of(path), *ref.split("."))
        if not ref or any(not part for part in target):
            raise UserError(f"empty reference ${{{ref}}}", origin=origin, key=dotted(path))
        if section_is_secret(target):
            raise UserError(
                f"${{{ref}}}: secrets cannot be interpolated into other values "
                "(hooks read them from the environment)",
                origin=origin,
                key=dotted(path),
            )
        try:
            value = self.value_at(target)
        except KeyError:
            raise UserError(
                f"reference ${{{ref}}} names '{dotted(target)}', which is not set",
                origin=origin,
                key=dotted(path),
            ) from None
        if isinstance(value, dict):
            raise UserError(
                f"reference ${{{ref}}} names a section, not a value",
                origin=origin,
                key=dotted(path),
            )
        return value


def section_is_secret(path: KeyPath) -> bool:
    return bool(path) and path[0] == "secrets"


def _mapping_of(path: KeyPath) -> KeyPath:
    """The mapping that holds the value at `path` (skipping list indexes)."""
    parent = path[:-1]
    while parent and isinstance(parent[-1], int):
        parent = parent[:-1]
    return parent


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_as_text(v) for v in value)
    return str(value)
