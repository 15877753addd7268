"""Secret values, fetched only when a build runs.

Plans, saved configs, manifests and logs hold a `SecretRef` (where the value
lives) and never the value.  The executor asks this module for the values at
run time; `redactor()` gives a function that scrubs them from any text that
is about to be shown or written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eib.envnames import env_name
from eib.errors import UserError
from eib.model.plan import REDACTED, Plan, SecretRef


def _inline_value(ref: SecretRef) -> str:
    """Re-read an inline `value:` from the recipe file that holds it."""
    from eib.load.yamlfile import load_yaml

    file, _, _line = ref.where.rpartition(":")
    doc = load_yaml(Path(file or ref.where))
    for path in doc.origins:
        if len(path) >= 3 and path[-3:] == ("secrets", ref.name, "value"):
            node: Any = doc.data
            for part in path:
                node = node[part]
            return str(node)
    raise UserError(f"secret '{ref.name}' is no longer in {ref.where}", key=f"secrets.{ref.name}")


def resolve_secret(ref: SecretRef) -> str:
    if ref.source == "value":
        return _inline_value(ref)
    if ref.source == "file":
        return ref.where
    if ref.source == "env":
        if ref.where not in os.environ:
            raise UserError(
                f"secret '{ref.name}' comes from ${ref.where}, which is not set",
                key=f"secrets.{ref.name}",
            )
        return os.environ[ref.where]
    raise UserError(f"secret '{ref.name}' has an unknown source {ref.source!r}")


def resolve_secrets(plan: Plan) -> dict[str, str]:
    """name → value; for `file:` secrets the value is the file's path."""
    return {ref.name: resolve_secret(ref) for ref in plan.secrets}


def runtime_env(plan: Plan) -> dict[str, str]:
    """The hook environment with the real values in place of `<redacted>`."""
    env = dict(plan.env)
    for name, value in resolve_secrets(plan).items():
        env[env_name("secrets", name)] = value
        if "." in name.strip("."):  # a private INI value: its own option's variable too
            env[env_name(*name.split(".", 1))] = value
    if any(v == REDACTED for v in env.values()) and plan_is_legacy(plan):
        from eib.compat.private import private_env

        for key, value in private_env(plan).items():
            if env.get(key) == REDACTED:
                env[key] = value
    return env


def plan_is_legacy(plan: Plan) -> bool:
    return Path(plan.recipe).is_dir()


def secret_values(plan: Plan) -> list[str]:
    """Every secret text of this build worth scrubbing (file contents included)."""
    values: list[str] = []
    for ref in plan.secrets:
        try:
            value = resolve_secret(ref)
        except UserError:
            continue
        if ref.source == "file":
            try:
                content = Path(value).read_text(errors="replace")
            except OSError:
                continue
            values.extend(line.strip() for line in content.splitlines())
            values.extend(part.strip() for line in content.splitlines() for part in line.split("="))
        else:
            values.append(value)
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def redactor(plan: Plan) -> Callable[[str], str]:
    """A function replacing every secret value of `plan` in a text by `<redacted>`."""
    values = secret_values(plan)

    def scrub(text: str) -> str:
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    return scrub
