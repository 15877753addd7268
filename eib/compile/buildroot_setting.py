"""`build.buildroot` as the plan carries it, from a recipe or a legacy tree's `[buildroot]`.

The plan always says true, false or auto; auto ("when the OS tree has
/bin/bash") is settled only by the run, once the OS commit is known.  An
explicit `build.buildroot` true or false wins.  Otherwise the `[buildroot]`
section decides, in a legacy tree or in a recipe that carries it as a
free-form section (as `eib convert` writes it): `enable` when set, else
auto when the recipe asked for it or is a legacy tree (whose builds always
ran in a buildroot), else false: a YAML recipe opts in.  The section itself
stays as it was, so hooks still read EIB_BUILDROOT_MOUNTS.
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
    section = extra.get("buildroot") or {}
    update: dict[str, Any] = {}
    if not isinstance(build.buildroot, bool):
        enable = _enable(section.get("enable"), tree, legacy)
        if enable is not None:
            update["buildroot"] = enable
        elif build.buildroot is None:
            update["buildroot"] = "auto" if legacy else False
    mounts = section.get("mounts")
    if not build.buildroot_mounts and mounts:
        update["buildroot_mounts"] = mounts.split() if isinstance(mounts, str) else [
            str(m) for m in mounts]
    return build.model_copy(update=update) if update else build


def _enable(value: Any, tree: Tree, legacy: bool) -> bool | None:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    word = BOOLEANS.get(value.strip().lower())
    if word is None:
        raise UserError(f"expected true or false, not {value.strip()!r}",
                        origin=tree.origin(("buildroot", "enable")),
                        key="[buildroot] enable" if legacy else "buildroot.enable")
    return word
