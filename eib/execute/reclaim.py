"""What a SIGKILLed build left on the host is reclaimed by the next eib run.

A killed build leaves its hooks' processes running and, when a `.chroot`
hook was running, the deployment's mounts (a bind of the host's `/dev`
among them) under its work dir, where an `rm -rf` would descend into them.
The next build may use another work dir, so each build registers itself in
a host-wide registry, `/run/eib/builds/<pid>.<start time>` (root's, 0700;
`$EIB_RUN_DIR` moves it), holding its work dir; it removes the entry when
it ends. Every run (and `eib cache gc`) first ends, for each entry whose
build is gone, the processes recorded in that work dir, then detaches every
mount below it (deepest first), and ends every process on the host that
carries a gone build's mark (`eib.tools.owned`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eib.errors import BuildError
from eib.execute.exclusive import dir_lock
from eib.execute.mounts import PIDS_DIR, cleanup_work_dir, mounts_under, unmount
from eib.execute.safedirs import ensure_private_dir
from eib.tools import owned

log = logging.getLogger("eib.execute.reclaim")
EXIT_GRACE_SECONDS = 1.0


def registry() -> Path:
    base = os.environ.get("EIB_RUN_DIR") or ("/run/eib" if os.geteuid() == 0 else
                                             f"/tmp/eib-run-{os.geteuid()}")
    return Path(base) / "builds"


@contextmanager
def owned_build(work: Path) -> Iterator[None]:
    """Register this build and record the processes it starts until the block ends."""
    root = registry()
    ensure_private_dir(root, key="EIB_RUN_DIR")
    entry = root / owned.identity(os.getpid())
    entry.write_text(str(work.resolve()) + "\n")
    try:
        with owned.journal(work / PIDS_DIR):
            yield
    finally:
        end_own_processes()
        entry.unlink(missing_ok=True)


def end_own_processes() -> None:
    """End what this build's hooks left running (a `setsid daemon &` escapes its group).

    A tool's helper that is already on its way out (the gpg-agent ostree's
    verification starts, then tells to quit) gets a moment to exit first, so
    only what would really stay running is reported.
    """
    me = owned.identity(os.getpid())
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    while (left := _marked_by(me)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        log.warning("ending pid %d, left running by a hook or tool of this build", pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _marked_by(owner: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if (entry.isdigit() and int(entry) != os.getpid()
                and owned.mark_of(int(entry)) == owner):
            found.append(int(entry))
    return found


def reclaim_stale_builds(*, skip: Path | None = None) -> None:
    """End and detach what gone builds left, in any work dir of the host.

    A work dir that a live build holds (its lock is taken) is left to that
    build, which reclaims it itself before using it; `skip` is the caller's.
    """
    ended = owned.reclaim_orphans()
    if ended:
        log.info("ended %d processes left by builds that are gone", ended)
    root = registry()
    if not root.is_dir():
        return
    for entry in sorted(root.iterdir()):
        if owned.alive(entry.name):
            continue
        try:
            work = Path(entry.read_text().strip())
        except OSError:
            entry.unlink(missing_ok=True)
            continue
        if work.is_absolute() and (skip is None or work != skip.resolve()):
            log.info("reclaiming %s, left by the build %s that is gone", work, entry.name)
            _reclaim_work_dir(work)
        entry.unlink(missing_ok=True)


def _reclaim_work_dir(work: Path) -> None:
    if not work.is_dir():
        # Removed while still mounted: the mounts are all that is left.
        for target in mounts_under(work):
            unmount(target)
        return
    try:
        with dir_lock(work, "work dir", "--work-dir", 0):
            cleanup_work_dir(work)
    except BuildError as err:
        log.info("not reclaiming %s now: %s", work, err.message)
