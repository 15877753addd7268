"""Where a build's temporary files go, so that a killed build's are reclaimed.

Key files, Flatpak configuration and the publishers' copies of credentials
are made with `tempfile`; a SIGKILL leaves them in $TMPDIR forever. During
a build they go to `$TMPDIR/eib-tmp-<uid>/<pid>.<start time>/` instead, and
every build first removes the dirs there whose process is gone (the start
time tells a reused pid from the owner). The path stays short: gpg puts its
agent's sockets in homedirs made there, and socket paths are limited to 107
bytes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eib.execute.safedirs import ensure_private_dir
from eib.tools.owned import alive, start_time

log = logging.getLogger("eib.execute.scratch")

__all__ = ["build_temp_dir", "host_temp_root", "owner_alive", "reclaim_stale", "start_time"]


def host_temp_root() -> Path:
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"eib-tmp-{os.geteuid()}"


def owner_alive(name: str) -> bool:
    return alive(name)


def reclaim_stale(root: Path) -> None:
    """Remove the temporary dirs of builds that are no longer running."""
    for path in root.iterdir():
        if not owner_alive(path.name):
            log.info("removing %s, left by a build that is gone", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def build_temp_dir() -> Iterator[Path]:
    """This build's own temporary dir, made `tempfile`'s default while the build runs."""
    root = host_temp_root()
    ensure_private_dir(root, key="TMPDIR")
    reclaim_stale(root)
    path = root / f"{os.getpid()}.{start_time(os.getpid())}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    previous = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(path, ignore_errors=True)
