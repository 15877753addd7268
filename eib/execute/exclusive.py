"""One build per cache dir, work dir and output dir at a time.

Two builds sharing a cache would pull into, prune and summarise the same
OSTree repo concurrently; two sharing a work dir would deploy into (and
empty) the same sysroot; two sharing an output dir would swap their image
sets over each other.  An exclusive `flock` serialises each: on
`<cache>/lock` for the cache (the holder writes its pid there), and on the
directory itself for the work and output dirs, so neither gets a lock file
that a build would empty or a publish would upload.  A lock dies with its
holder, so a killed build never leaves a stale one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from eib.errors import BuildError

log = logging.getLogger("eib.execute.exclusive")

PROC_LOCKS = Path("/proc/locks")


def holder_pid(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def flock_holder(fd: int) -> str:
    """The pid holding a `flock` on the file open as `fd`, read from /proc/locks."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = PROC_LOCKS.read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; "->" marks waiters.
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if fields[5] == wanted:
            return fields[4]
    return "unknown"


def _acquire(
    fd: int,
    timeout: float | None,
    who: Callable[[], str],
    on_wait: Callable[[str], None] | None,
    wait_text: Callable[[str], str],
    fail: Callable[[str], BuildError],
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pid = who()
            if deadline is not None and time.monotonic() >= deadline:
                raise fail(pid) from None
            if not announced and on_wait is not None:
                on_wait(wait_text(pid))
                announced = True
            time.sleep(0.2)


@contextmanager
def cache_lock(
    cache: Path,
    timeout: float | None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the cache lock; wait up to `timeout` s (None: forever, 0: not at all)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(
            fd, timeout, lambda: holder_pid(path), on_wait,
            lambda pid: f"waiting for the lock on {cache}, held by pid {pid}",
            lambda pid: BuildError(
                f"cache dir {cache} is locked by another eib run (pid {pid}); "
                "wait for it or use another --cache-dir",
                stage="lock",
            ),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        log.debug("locked %s (pid %d)", path, os.getpid())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def dir_lock(
    path: Path,
    what: str,
    option: str,
    timeout: float | None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold an exclusive lock on the directory `path` (`what`: "work dir", "output dir")."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _acquire(
            fd, timeout, lambda: flock_holder(fd), on_wait,
            lambda pid: f"waiting for the lock on the {what} {path}, held by pid {pid}",
            lambda pid: BuildError(
                f"{what} {path} is in use by another eib run (pid {pid}); "
                f"wait for it or use another {option}",
                stage="lock",
            ),
        )
        log.debug("locked %s %s (pid %d)", what, path, os.getpid())
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
