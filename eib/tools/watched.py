"""Running a network tool under the stall timeout and deadline of `eib.network`.

Tools such as `ostree pull` wait on a silent server for as long as it keeps
the connection open.  `run_watched` polls a progress probe (anything that
changes while the tool gets data, e.g. the state of the directory it
downloads into) and ends the tool when the probe has not changed for the
stall timeout or the deadline has passed.  Whatever ends the wait (a stall,
the deadline, a signal raising `Interrupted`), the tool never outlives it.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

from eib.errors import BuildError
from eib.network import Deadline
from eib.tools import owned

log = logging.getLogger("eib.tools")

POLL_SECONDS = 0.25
Probe = Callable[[], Hashable]


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """End `proc`: SIGTERM, then SIGKILL after `grace` seconds; always reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_watched(
    cmd: Sequence[str | Path], probe: Probe, deadline: Deadline, what: str
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` to its end, or raise NetworkStall / NetworkDeadline having ended it."""
    argv = [str(c) for c in cmd]
    log.debug("$ %s", shlex.join(argv))
    stall = deadline.limits.stall
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    preexec_fn=owned.preexec())
            owned.spawned(proc.pid)
        except FileNotFoundError as error:
            raise BuildError(f"required tool '{argv[0]}' is not installed") from error
        try:
            state = probe()
            changed = time.monotonic()
            while proc.poll() is None:
                time.sleep(POLL_SECONDS)
                now = time.monotonic()
                seen = (probe(), out.tell(), err.tell())
                if seen != state:
                    state, changed = seen, now
                elif stall > 0 and now - changed > stall:
                    stop(proc)
                    raise deadline.limits.stall_error(what)
                if deadline.passed():
                    stop(proc)
                    raise deadline.limits.deadline_error(what)
        finally:
            stop(proc)
            owned.reaped(proc.pid)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def dir_state(path: Path) -> tuple[int, int, int]:
    """(entries, bytes, newest mtime in ns) below `path`: changes whenever data lands there."""
    entries = size = newest = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                scan = list(it)
        except OSError:
            continue
        for entry in scan:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            entries += 1
            size += st.st_size
            newest = max(newest, st.st_mtime_ns)
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return entries, size, newest

