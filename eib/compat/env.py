"""The `EIB_*` environment hooks and stages read their configuration from.

One naming function serves both INI trees and YAML recipes, so a hook sees the
same variable names whichever format the build was written in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from eib.compat.interpolate import BUILD
from eib.compat.reader import LegacyConfig

_UNSAFE = re.compile(r"[^A-Z0-9_]")


def env_name(section: str, option: str) -> str:
    """`[image] icon_grid` → `EIB_IMAGE_ICON_GRID`; `[build] product` → `EIB_PRODUCT`."""
    name = option if section == BUILD else f"{section}_{option}"
    return "EIB_" + _UNSAFE.sub("_", name.upper())


def env_value(value: str) -> str:
    """`True`/`FALSE`/… are exported lower case so shell tests can compare with `true`."""
    return value.lower() if value.lower() in ("true", "false") else value


def legacy_env(config: LegacyConfig) -> dict[str, str]:
    """Every option of the merged config (private ones too), expanded."""
    env: dict[str, str] = {}
    for section, options in config.resolved().items():
        for option, value in options.items():
            env[env_name(section, option)] = env_value(value)
    return env


def typed_value(value: object) -> str:
    """A typed recipe value as the INI builder would have written it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "\n".join(typed_value(v) for v in value)
    return env_value(str(value))


def recipe_env(sections: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """The same environment from already-typed sections (section → key → value).

    Nested mappings (such as `flatpak.remotes`) are not options: pass each
    remote as its own `flatpak-remote-NAME` section instead.
    """
    env: dict[str, str] = {}
    for section, options in sections.items():
        for option, value in options.items():
            if isinstance(value, Mapping):
                continue
            env[env_name(section, option)] = typed_value(value)
    return env
