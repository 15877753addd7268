"""Facts about a variant that every layer shares: architectures, series, build version.

The recipe loader, the legacy reader, the compiler and the Flatpak tools all
need the same answers (which arches exist, what the host is, what `eos3.8`'s
series is, what time a build is stamped with), so they are answered here
once.
"""

from __future__ import annotations

import os
import platform as host_platform
import re
import time

from eib.errors import Origin, UserError, did_you_mean
from eib.limits import MAX_VALUE_CHARS
from eib.model.recipe import ARCHES

# Debian architecture names (the recipe's) → Flatpak's and the kernel's.
FLATPAK_ARCHES = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i386"}
_HOST_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

__all__ = ["ARCHES", "FLATPAK_ARCHES", "build_version", "check_variant_value", "host_arch",
           "series_of", "source_date_epoch"]


def check_variant_value(
    attr: str, value: str, *, origin: Origin | None = None, key: str | None = None
) -> None:
    """Refuse a value that cannot be this attribute, naming where it came from.

    Variant attributes become parts of file names (`<product>-<branch>-...img`,
    `personality/<value>.ini`, publish paths), so a value must be one plain
    name: no '/', no leading '.' or '-', no white space or control characters.
    `key` is what the user wrote it as (`--arch`, `variant.arch`), `origin`
    the file and line, when it came from a file.
    """
    key = key or attr
    if len(value) > MAX_VALUE_CHARS:
        raise UserError(
            f"{attr} is {len(value)} characters long; the limit is {MAX_VALUE_CHARS}",
            origin=origin,
            key=key,
        )
    if attr == "arch" and value not in ARCHES:
        raise UserError(
            f"unsupported arch {value!r} (one of {', '.join(ARCHES)})",
            origin=origin,
            key=key,
            hint=did_you_mean(value, ARCHES),
        )
    if (
        not value
        or value[0] in ".-"
        or "/" in value
        or "\\" in value
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise UserError(
            f"invalid {attr} {value!r}: it names files, so it must be one plain name "
            "(no '/', no leading '.' or '-', no spaces)",
            origin=origin,
            key=key,
        )


def host_arch(machine: str | None = None) -> str:
    """The build arch of this machine; an unknown CPU is an error, not a guess."""
    machine = machine if machine is not None else host_platform.machine()
    if machine in _HOST_ARCHES:
        return _HOST_ARCHES[machine]
    if re.fullmatch(r"i[3-6]86", machine):
        return "i386"
    raise UserError(
        f"host architecture '{machine}' is not supported",
        key="arch",
        hint="pass --arch amd64, arm64 or i386",
    )


def series_of(branch: str) -> str:
    """`eos3.8` → `eos3`: the branch with its last `.`-part removed."""
    return branch.rsplit(".", 1)[0] if "." in branch else branch


def source_date_epoch(value: str | None = None) -> int | None:
    """`SOURCE_DATE_EPOCH` (or `value`) as seconds, None when unset; garbage is a UserError."""
    text = value if value is not None else os.environ.get("SOURCE_DATE_EPOCH", "")
    if not text:
        return None
    try:
        stamp = int(text)
    except ValueError:
        raise UserError(
            f"SOURCE_DATE_EPOCH must be an integer, not '{text}'", key="SOURCE_DATE_EPOCH"
        ) from None
    if stamp < 0:
        raise UserError("SOURCE_DATE_EPOCH must not be negative", key="SOURCE_DATE_EPOCH")
    return stamp


def build_version(epoch: int | None = None) -> str:
    """UTC `%y%m%d-%H%M%S` of `epoch`, else of SOURCE_DATE_EPOCH, else of now."""
    stamp = epoch if epoch is not None else source_date_epoch()
    return time.strftime("%y%m%d-%H%M%S", time.gmtime(time.time() if stamp is None else stamp))
