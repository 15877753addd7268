"""One build per cache dir at a time.

Two builds sharing a cache would pull into, prune and summarise the same
OSTree repo concurrently; an exclusive `flock` on `<cache>/lock` serialises
them.  The holder writes its pid into the file so that a waiting or failing
build can say who holds it.
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


def holder_pid(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


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
        deadline = None if timeout is None else time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = holder_pid(path)
                if deadline is not None and time.monotonic() >= deadline:
                    raise BuildError(
                        f"cache dir {cache} is locked by another eib run (pid {pid}); "
                        "wait for it or use another --cache-dir",
                        stage="lock",
                    ) from None
                if not announced and on_wait is not None:
                    on_wait(f"waiting for the lock on {cache}, held by pid {pid}")
                    announced = True
                time.sleep(0.2)
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
