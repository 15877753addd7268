"""The `EIB_*` environment of a typed recipe (names and values: `eib.envnames`).

YAML sections map onto the legacy section names (`hooks.image` is
`[image] hooks`, `flatpak.remotes.X` is `[flatpak-remote-X]`) so a legacy
hook finds the same variables whichever format the recipe is in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eib.envnames import env_name, env_value
from eib.model.recipe import Recipe
from eib.secrets.tokens import token


def sections_env(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Legacy-named variables for INI-shaped sections (section → option → value)."""
    env: dict[str, str] = {}
    for section, options in sections.items():
        for option, value in options.items():
            if isinstance(value, dict):
                continue
            env[env_name(section, option)] = env_value(value)
    return env


def legacy_sections(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The recipe seen as legacy INI sections (what hooks were written against)."""
    dump = recipe.model_dump(mode="json")
    sections: dict[str, dict[str, Any]] = {}
    sections["build"] = dump["build"]
    for name in ("ostree", "image", "demo"):
        sections[name] = dict(dump[name])
    flatpak = dict(dump["flatpak"])
    remotes = flatpak.pop("remotes")
    sections["flatpak"] = flatpak
    for remote, options in remotes.items():
        sections[f"flatpak-remote-{remote}"] = options
    for group, names in dump["hooks"].items():
        if group != "pass_env":
            sections.setdefault(group, {})["hooks"] = names
    sections.setdefault("publish", {})["path"] = dump["publish"]["path"]
    sections["secrets"] = {
        name: (token(name) if s["value"] is not None or s["env"] or s["key"] else s["file"])
        for name, s in dump["secrets"].items()
    }
    for name, options in dump["extra"].items():
        sections.setdefault(name, {}).update(options)
    return sections


def recipe_env(recipe: Recipe) -> dict[str, str]:
    return dict(sorted(sections_env(legacy_sections(recipe)).items()))
