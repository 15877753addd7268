"""The legacy `[ostree]` settings the recipe names differently, and the trusted keys.

A legacy tree never sets `ostree.url`: the pull URL is `dev_pull_url`, or
`prod_pull_url` with `--use-production-ostree` (LEGACY-HOOKS.md §7.1).  The
two become the recipe's `url` and `prod_url`, and the switch is the
recipe's `build.use_production_ostree`, so one plan input decides, for INI
and YAML alike.  `enable_p2p_updates` is the recipe's `p2p`.  The legacy
keys themselves stay under `extra.ostree`, where hooks read them as before.

The legacy builder trusted every `*.asc` of `${build:datadir}/keys` and
`${build:localdatadir}/keys` for the OS pull (§7.2), sorted by full path
across both; they become `ostree.gpg_keys`, which the compiler then reads
into the plan by content.  Flatpak remotes took their keys from their own
`repo_file`, never from these directories, so they are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from eib.compat.mapping import escape
from eib.errors import Origin

# legacy [ostree] key → recipe `ostree` field, used when the field itself is unset.
RENAMED = {
    "dev_pull_url": "url",
    "prod_pull_url": "prod_url",
    "enable_p2p_updates": "p2p",
}
KEYS_ORIGIN = "<legacy data/keys>"

OriginOf = Callable[[str, str], Origin | None]


def key_dirs(build: Mapping[str, str]) -> list[Path]:
    """`${build:datadir}/keys` (default `${srcdir}/data/keys`) and the localdir's."""
    datadir = build.get("datadir") or str(Path(build.get("srcdir", ".")) / "data")
    dirs = [Path(datadir) / "keys"]
    if build.get("localdatadir"):
        dirs.append(Path(build["localdatadir"]) / "keys")
    return dirs


def trusted_keys(build: Mapping[str, str]) -> list[str]:
    """Every `*.asc` of the existing key dirs, sorted by full path across both."""
    found = [p for d in key_dirs(build) if d.is_dir() for p in d.glob("*.asc") if p.is_file()]
    return sorted(str(p.resolve()) for p in found)


def map_ostree(
    sections: Mapping[str, Mapping[str, str]],
    recipe: dict[str, Any],
    origins: dict[tuple[str, ...], Origin],
    origin_of: OriginOf,
) -> None:
    """Fill `recipe["ostree"]` from the legacy key names and the trusted key dirs."""
    legacy = sections.get("ostree", {})
    ostree = recipe.setdefault("ostree", {})
    for old, new in RENAMED.items():
        if old not in legacy or new in legacy:
            continue
        value: Any = legacy[old]
        if new == "p2p":
            value = value.strip().lower() in ("1", "yes", "true", "on")
        ostree[new] = escape(value)
        origin = origin_of("ostree", old)
        if origin is not None:
            origins[("ostree", new)] = origin
    if "gpg_keys" not in legacy:
        keys = trusted_keys(sections.get("build", {}))
        if keys:
            ostree["gpg_keys"] = escape(keys)
            origins[("ostree", "gpg_keys")] = Origin(KEYS_ORIGIN)
