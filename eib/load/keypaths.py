"""Reading and writing nested recipe data by key path, as plain dicts hold it."""

from __future__ import annotations

from typing import Any

from eib.load.yamlfile import KeyPath


def node_at(data: dict[Any, Any], path: KeyPath) -> dict[Any, Any]:
    """The mapping at `path`, made (or replacing a non-mapping) on the way."""
    node = data
    for part in path:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    return node


def set_at(data: dict[Any, Any], path: KeyPath, value: Any) -> None:
    node_at(data, path[:-1])[path[-1]] = value


def get_at(data: Any, path: KeyPath) -> Any:
    """The value at `path`, or None where the path leads nowhere."""
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
