"""`build.buildroot` as the plan carries it, from a recipe or a legacy tree's `[buildroot]`.

A YAML recipe that leaves it unset never runs its hooks in a buildroot
(false in the plan); a legacy INI tree's builds always did, so there an
unset value stays null, meaning "when the OS tree has the tools", which only
the run can tell.  The legacy `[buildroot]` section itself stays as it was,
so hooks still read EIB_BUILDROOT_MOUNTS.
"""

from __future__ import annotations

from typing import Any

from eib.errors import UserError
from eib.load.merge import Tree
from eib.model.recipe import Build

BOOLEANS = {"true": True, "false": False}


def resolve_buildroot(build: Build, extra: dict[str, dict[str, Any]], tree: Tree,
                      legacy: bool) -> Build:
    """The plan's build section with `buildroot` and `buildroot_mounts` settled."""
    if not legacy:
        return build if build.buildroot is not None else build.model_copy(
            update={"buildroot": False})
    section = extra.get("buildroot") or {}
    update: dict[str, Any] = {}
    enable = section.get("enable")
    if build.buildroot is None and isinstance(enable, str) and enable.strip():
        value = BOOLEANS.get(enable.strip().lower())
        if value is None:
            raise UserError(f"expected true or false, not {enable.strip()!r}",
                            origin=tree.origin(("buildroot", "enable")),
                            key="[buildroot] enable")
        update["buildroot"] = value
    mounts = section.get("mounts")
    if not build.buildroot_mounts and isinstance(mounts, str):
        update["buildroot_mounts"] = mounts.split()
    return build.model_copy(update=update) if update else build
