"""Compile side: the `SecretRef`s of a recipe's `secrets:` section.

An inline `value:` becomes a reference to the recipe file and the key path
of that value in it (found by line, overlays included), so the plan names
where the value is and the provider re-reads it when the build runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from eib.errors import Origin, UserError
from eib.model.plan import SecretRef
from eib.model.recipe import Secret


def _key_path(node: Any, want: tuple[str, str, str], line: int, path: list[str]) -> list[str]:
    """The path of the `secrets: NAME: value:` scalar at 1-based `line`, if any."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = [*path, str(key.value)]
            if tuple(here[-3:]) == want and key.start_mark.line + 1 == line:
                return here
            found = _key_path(value, want, line, here)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _key_path(item, want, line, [*path, str(index)])
            if found:
                return found
    return []


def inline_ref(name: str, origin: Origin | None) -> SecretRef:
    if origin is None or not Path(origin.file).is_file():
        raise UserError(
            "an inline secret value must be written in a recipe file",
            key=f"secrets.{name}.value",
            hint="use env: or file:, or `eib run --secret NAME=@FILE`",
        )
    with open(origin.file, encoding="utf-8") as f:
        root = yaml.compose(f)
    path = _key_path(root, ("secrets", name, "value"), origin.line, [])
    if not path:
        raise UserError("cannot locate this secret value", origin=origin, key=f"secrets.{name}")
    return SecretRef(name=name, source="file-key", where=str(Path(origin.file).resolve()),
                     key=path)


def secret_refs(
    secrets: dict[str, Secret], origin_of_value: dict[str, Origin | None]
) -> list[SecretRef]:
    refs = []
    for name, secret in sorted(secrets.items()):
        if secret.value is not None:
            refs.append(inline_ref(name, origin_of_value.get(name)))
        elif secret.file and secret.key:
            parts = (secret.key.split(".", 1) if secret.file.endswith(".ini")
                     else secret.key.split("."))
            refs.append(SecretRef(name=name, source="file-key", where=secret.file, key=parts))
        elif secret.file:
            refs.append(SecretRef(name=name, source="file", where=secret.file))
        else:
            refs.append(SecretRef(name=name, source="env", where=secret.env or ""))
    return refs
