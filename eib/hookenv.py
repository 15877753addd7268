"""The `EIB_*` environment hooks read, named exactly as the legacy builder did.

Every option becomes `EIB_<SECTION>_<OPTION>` upper-cased with characters
outside `A-Z0-9_` turned into `_`; `[build]` options drop the section;
`true`/`false` are lower case; lists are newline-joined like merged INI
options.  YAML sections map onto the legacy section names (`hooks.image` is
`[image] hooks`, `flatpak.remotes.X` is `[flatpak-remote-X]`) so a legacy
hook finds the same variables whichever format the recipe is in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eib.model.plan import REDACTED
from eib.model.recipe import Recipe

_UNSAFE = re.compile(r"[^A-Z0-9_]")


def env_name(section: str, option: str) -> str:
    if section == "build":
        return _UNSAFE.sub("_", f"EIB_{option}".upper())
    return _UNSAFE.sub("_", f"EIB_{section}_{option}".upper())


def env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(env_value(v) for v in value)
    return str(value)


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
        name: (REDACTED if s["value"] is not None or s["env"] else s["file"])
        for name, s in dump["secrets"].items()
    }
    for name, options in dump["extra"].items():
        sections.setdefault(name, {}).update(options)
    return sections


def recipe_env(recipe: Recipe) -> dict[str, str]:
    return dict(sorted(sections_env(legacy_sections(recipe)).items()))
