"""Finding the hooks a recipe lists, as the legacy builder's `run_hooks` found them.

A legacy tree's localdir `hooks/` first, then the checkout's own `hooks/`
(`$EIB_HOOKSDIR` when set), then eib's built-in `hooks/`; a YAML recipe's
own `hooks/` come before the localdir's.  Legacy names eib implements
itself (`NATIVE_HOOKS`) become native steps unless a dir before the
built-in one has that file.
"""

from __future__ import annotations

import os
from pathlib import Path

from eib.compile.carried import hook_step, native_step
from eib.errors import Origin, UserError
from eib.load.merge import Tree
from eib.load.yamlfile import KeyPath
from eib.model.plan import NATIVE_HOOKS, HookStep
from eib.model.recipe import HOOK_GROUPS, Recipe
from eib.paths import BUILTIN_HOOKS_DIR


def hook_dirs(recipe_dir: Path, localdir: Path | None, legacy: bool) -> list[tuple[str, Path]]:
    """(label, dir) in lookup order."""
    dirs = [("recipe", checkout_hooks(recipe_dir, legacy))]
    if localdir is not None:
        local = ("localdir", localdir.resolve() / "hooks")
        dirs = [local, *dirs] if legacy else [*dirs, local]
    dirs.append(("builtin", BUILTIN_HOOKS_DIR))
    return dirs


def _find_hook(group: str, name: str, dirs: list[tuple[str, Path]]) -> tuple[str, Path] | None:
    for label, directory in dirs:
        candidate = directory / group / name
        if candidate.is_file():
            return label, candidate.resolve()
    return None


def find_hooks(recipe: Recipe, tree: Tree, dirs: list[tuple[str, Path]]) -> list[HookStep]:
    """The listed hooks in the legacy order (C byte order), each found in `dirs`.

    A legacy name eib implements itself (`NATIVE_HOOKS`) becomes a native
    step unless a dir before the built-in one has its own file.
    """
    steps = []
    own_dirs = [(label, d) for label, d in dirs if label != "builtin"]
    for group in HOOK_GROUPS:
        for name in sorted(getattr(recipe.hooks, group)):
            native = NATIVE_HOOKS.get((group, name))
            found = _find_hook(group, name, own_dirs if native else dirs)
            if found is None and native:
                steps.append(native_step(group, name, native))
                continue
            if found is None:
                searched = ", ".join(str(d / group) for _, d in dirs)
                raise UserError(
                    f"hook '{name}' not found (searched {searched})",
                    origin=_added_at(tree, ("hooks", group), name),
                    key=f"hooks.{group}",
                )
            label, path = found
            steps.append(hook_step(group, name, path, label))
    return steps


def checkout_hooks(recipe_dir: Path, legacy: bool) -> Path:
    """The recipe's own hooks dir; for a legacy tree `$EIB_HOOKSDIR` when set, as the
    legacy `run_hooks` looked up `${EIB_HOOKSDIR:-$EIB_SRCDIR/hooks}`."""
    override = os.environ.get("EIB_HOOKSDIR", "") if legacy else ""
    return Path(override).absolute() if override else recipe_dir / "hooks"


def _added_at(tree: Tree, path: KeyPath, value: str) -> Origin | None:
    for event in reversed(tree.history.get(path, [])):
        if event.action in ("add", "set") and value in (event.value or []):
            return event.origin
    return tree.origin(path)
