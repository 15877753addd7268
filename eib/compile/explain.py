"""`eib plan --explain section.key`: a value and every layer that changed it."""

from __future__ import annotations

import json
from typing import Any

from eib.compile.compiler import CompileResult
from eib.errors import UserError, did_you_mean
from eib.load.keypaths import get_at
from eib.load.merge import Event
from eib.load.yamlfile import KeyPath


def _final(result: CompileResult, path: KeyPath) -> Any:
    node: Any = result.recipe.model_dump(mode="json")
    extra = node.pop("extra")
    node.update(extra)
    node["ostree"] = result.plan.ostree.model_dump(mode="json")
    node["flatpak"] = result.plan.flatpak.model_dump(mode="json")
    return get_at(node, path)


def explain_key(result: CompileResult, key: str, *, as_json: bool = False) -> str:
    path: KeyPath = tuple(key.split("."))
    events = result.tree.history.get(path, [])
    final = _final(result, path)
    if not events and final is None:
        known = [".".join(str(p) for p in k) for k in result.tree.history]
        raise UserError(
            f"'{key}' is not a key of this recipe", key=key, hint=did_you_mean(key, known)
        )
    if final is not None and path[0] == "secrets":
        final = "<redacted>"
    if as_json:
        data = {
            "key": key,
            "value": final,
            "history": [_event_json(e, path) for e in events],
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    lines = [f"{key} = {_show(final)}"]
    if not events:
        lines.append("  (default: not set by any layer)")
    for event in events:
        lines.append(f"  {_verb(event)} {_show(_value(event, path))}  at {event.origin}")
        if event.layer != event.origin.file and event.layer not in str(event.origin):
            lines.append(f"      layer: {event.layer}")
    return "\n".join(lines) + "\n"


def _value(event: Event, path: KeyPath) -> Any:
    return "<redacted>" if path[0] == "secrets" else event.value


def _verb(event: Event) -> str:
    return {"set": "set", "add": "add", "del": "del"}[event.action].ljust(3)


def _show(value: Any) -> str:
    if value is None:
        return "(mapping)" if value is None else ""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _event_json(event: Event, path: KeyPath) -> dict[str, Any]:
    return {
        "action": event.action,
        "value": _value(event, path),
        "file": event.origin.file,
        "line": event.origin.line,
        "layer": event.layer,
    }
