"""`eib plan --diff OTHER.json`: what changed between two plans, key by key."""

from __future__ import annotations

import json
from typing import Any


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        for index, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{index}]"))
    else:
        out[prefix] = data
    return out


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> str:
    a, b = flatten(old), flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"- {key}: {json.dumps(a[key])}")
        elif key not in a:
            lines.append(f"+ {key}: {json.dumps(b[key])}")
        elif a[key] != b[key]:
            lines.append(f"~ {key}: {json.dumps(a[key])} → {json.dumps(b[key])}")
    if not lines:
        return "plans are identical\n"
    return "\n".join(lines) + f"\n{len(lines)} difference(s)\n"
