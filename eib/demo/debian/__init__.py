"""The Debian demo OS: a Debian 12 tree with systemd, converted to the OSTree
layout and committed, signed, beside the busybox demo; plus a Flatpak repo
whose runtime is made of Debian binaries.  See docs/demo.md."""

from __future__ import annotations

from eib.demo.debian.cache import OSTREE_REF, DebianPaths, ensure_debian, ensure_debian_dir
from eib.demo.debian.layout import FLATPAK_MARKER, OS_NAME, READY_MARKER

__all__ = [
    "FLATPAK_MARKER",
    "OSTREE_REF",
    "OS_NAME",
    "READY_MARKER",
    "DebianPaths",
    "ensure_debian",
    "ensure_debian_dir",
]
