"""The lock file: the moving inputs of a recipe's variants, pinned.

A recipe names an OSTree *ref* and Flatpak *refs*; the commits behind them
move every time their publisher pushes.  `eib lock` resolves them once and
writes this file; `eib plan/run --lock` then build exactly those commits, so
a rebuild months later is the same build.  One file holds every variant of a
matrix, keyed by the resolved variant (`product/branch/arch/platform/personality`).

The file is YAML with sorted keys and no timestamps of its own, so locking the
same inputs twice gives the same bytes and a lock diff in review shows only
what really moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eib.errors import Origin, UserError
from eib.limits import MAX_RECIPE_BYTES, read_input
from eib.load.yamlfile import parse_value

LOCK_FORMAT: Literal[1] = 1
LOCK_SUFFIX = ".lock"
VARIANT_KEY_ATTRS = ("product", "branch", "arch", "platform", "personality")


class LockModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class OstreePin(LockModel):
    """The OS commit one variant builds, and where and how it was verified."""

    url: str
    ref: str
    commit: str = Field(pattern=r"^[0-9a-f]{64}$")
    timestamp: int = Field(ge=0, description="The commit's own time (seconds since the epoch)")
    version: str = ""
    gpg_keys: list[str] = Field(default_factory=list, description="Trusted key fingerprints")


class FlatpakRemotePin(LockModel):
    """The commits of every ref a build installs from one remote (dependencies included)."""

    url: str
    gpg_key: str = Field("", description="Fingerprint of the remote's key ('' when unsigned)")
    refs: dict[str, str] = Field(default_factory=dict, description="ref → commit")


class FlatpakPins(LockModel):
    arch: str = ""
    remotes: dict[str, FlatpakRemotePin] = Field(default_factory=dict)


class LockEntry(LockModel):
    """Everything pinned for one variant."""

    variant: dict[str, str]
    ostree: OstreePin
    flatpak: FlatpakPins = Field(default_factory=FlatpakPins)


class LockFile(LockModel):
    eib_lock: Literal[1] = LOCK_FORMAT
    recipe: str = Field(description="The recipe's file name, for people reading the lock")
    variants: dict[str, LockEntry] = Field(default_factory=dict)


def variant_key(build: dict[str, str]) -> str:
    """`product/branch/arch/platform/personality`: the lock's key of one resolved variant."""
    return "/".join(str(build.get(attr, "")) for attr in VARIANT_KEY_ATTRS)


def default_lock_path(recipe: Path) -> Path:
    """`<recipe stem>.lock` beside the recipe (inside a legacy config dir for INI trees)."""
    if recipe.is_dir():
        return recipe / f"{recipe.name}{LOCK_SUFFIX}"
    return recipe.with_name(recipe.stem + LOCK_SUFFIX)


def dump_lock(lock: LockFile) -> str:
    """Canonical text: sorted keys, block style, a trailing newline."""
    data = lock.model_dump(mode="json")
    header = (
        "# Written by `eib lock`: the pinned commits of this recipe's variants.\n"
        "# Update it with `eib lock` again; do not edit it by hand.\n"
    )
    body = yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True,
                          width=1000)
    return header + body


def write_lock(lock: LockFile, path: Path) -> None:
    """Replace `path` atomically, so a failed lock never leaves half a file."""
    text = dump_lock(lock)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_lock(path: Path) -> LockFile:
    """Parse and validate a lock file; every problem is a UserError naming the file."""
    origin = Origin(str(path))
    if not path.exists():
        raise UserError("lock file not found", origin=origin,
                        hint="create it with `eib lock RECIPE`")
    raw = read_input(path, limit=MAX_RECIPE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        where = Origin(str(path), line)
        raise UserError("not a lock file (not UTF-8 text)", origin=where) from None
    try:
        data = parse_value(text, str(path), strict=True)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = Origin(str(path), mark.line + 1) if mark is not None else origin
        raise UserError(f"not a YAML lock file: {err}", origin=where) from None
    if not isinstance(data, dict) or "eib_lock" not in data:
        raise UserError("not an eib lock file (no 'eib_lock' key)", origin=origin)
    try:
        return LockFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise UserError(f"invalid lock file: {first['msg']}", origin=origin, key=key) from None


def find_entry(lock: LockFile, path: Path, build: dict[str, str]) -> LockEntry:
    """The entry of one resolved variant, or a UserError naming the lock file."""
    key = variant_key(build)
    entry = lock.variants.get(key)
    if entry is None:
        known = ", ".join(sorted(lock.variants)) or "none"
        raise UserError(
            f"variant {key} is not in the lock (locked variants: {known})",
            origin=Origin(str(path)),
            hint="run `eib lock` with this variant (or its --matrix) to add it",
        )
    return entry


__all__ = [
    "FlatpakPins",
    "FlatpakRemotePin",
    "LockEntry",
    "LockFile",
    "OstreePin",
    "default_lock_path",
    "dump_lock",
    "find_entry",
    "read_lock",
    "variant_key",
    "write_lock",
]
