"""A full disk, reported as such.

A full file system surfaces as ENOSPC somewhere deep in a write, or as a
tool dying of the broken pipe that follows; the user needs to hear which
file system is full, not which process died last.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from eib.errors import BuildError


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    while current != current.parent and not os.path.ismount(current):
        current = current.parent
    return current


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def no_space(path: Path, stage: str | None = None) -> BuildError:
    """`no space left on <mount point> (writing <name>)` for a write to `path`."""
    where = mount_point(path)
    detail = "" if path == where else f" (writing {path.name})"
    return BuildError(f"no space left on {where}{detail}", stage=stage)
