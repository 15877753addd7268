"""The `[build]` section: the variant attributes and the facts derived from them.

These are computed before any file is read, exactly like the legacy builder
did, so every INI file can refer to `${build:product}` and friends.
"""

from __future__ import annotations

from pathlib import Path

from eib.errors import UserError, did_you_mean
from eib.paths import SYSCONFDIR
from eib.variant import ARCHES as SUPPORTED_ARCHES
from eib.variant import build_version, host_arch, series_of

ATTRIBUTES = ("product", "branch", "arch", "platform", "personality")
# Every key eib sets in [build] before the files are read.
BUILD_KEYS = (
    *ATTRIBUTES,
    "series",
    "build_version",
    "srcdir",
    "cachedir",
    "sysconfdir",
    "localdir",
    "localdatadir",
)
DEFAULT_SYSCONFDIR = Path(SYSCONFDIR)
DEFAULT_CACHEDIR = Path("/var/cache/eib")


def personality_prefixes(personality: str) -> list[str]:
    """`en_GB_orkney` → `en`, `en_GB`, `en_GB_orkney`: each read in that order."""
    parts = personality.split("_")
    return ["_".join(parts[: n + 1]) for n in range(len(parts))]


def resolve_variant(variant: dict[str, str]) -> dict[str, str]:
    """Fill the attribute defaults and reject values that cannot name a file."""
    unknown = set(variant) - set(ATTRIBUTES)
    if unknown:
        name = sorted(unknown)[0]
        raise UserError("unknown build attribute", key=name, hint=did_you_mean(name, ATTRIBUTES))
    arch = variant.get("arch") or host_arch()
    if arch not in SUPPORTED_ARCHES:
        raise UserError(
            f"unsupported arch '{arch}' (supported: {', '.join(SUPPORTED_ARCHES)})",
            key="--arch",
            hint=did_you_mean(arch, SUPPORTED_ARCHES),
        )
    values = {
        "product": variant.get("product") or "eoscustom",
        "branch": variant.get("branch") or "master",
        "arch": arch,
        "platform": variant.get("platform") or arch,
        "personality": variant.get("personality") or "base",
    }
    for name, value in values.items():
        if "/" in value or value.startswith(".") or not value.strip():
            raise UserError(f"'{value}' cannot name a config file", key=f"--{name}")
    return values


def build_section(
    values: dict[str, str],
    *,
    srcdir: Path,
    cachedir: Path,
    sysconfdir: Path,
    localdir: Path | None,
    version: str | None = None,
) -> dict[str, str]:
    """The `[build]` keys in the order they are shown."""
    section = dict(values)
    section["series"] = series_of(values["branch"])
    section["build_version"] = version or build_version()
    section["srcdir"] = str(srcdir)
    section["cachedir"] = str(cachedir)
    section["sysconfdir"] = str(sysconfdir)
    section["localdir"] = str(localdir) if localdir else ""
    section["localdatadir"] = str(localdir / "data") if localdir else ""
    return section
