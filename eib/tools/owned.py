"""Every process a build starts can be found, and ended, after the build is SIGKILLed.

A SIGKILL (an OOM killer, a dying CI runner) gives eib no chance to end its
hooks and tools; hooks run in their own session, so nothing else ends them
either, and they go on writing into dirs the next build uses. Three lines
of defence:

* each child gets `PR_SET_PDEATHSIG(SIGKILL)`: the kernel ends it when eib
  dies (not what it forked, though);
* each child is recorded in the build's journal, `<work>/.pids/<pid>.<start
  time>`, with its process group and its owner (eib's own pid and start
  time: a reused pid never passes for the process recorded);
* each child's environment carries `EIB_BUILD_OWNER=<pid>.<start time>`,
  which everything it forks inherits, even a grandchild that left the
  session (`setsid daemon &`).

The next build ends the groups of a journal whose owner is gone, and every
process on the host that carries the mark of a build that is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("eib.tools.owned")

OWNER_VAR = "EIB_BUILD_OWNER"
OWNER_FILE = "owner"
PR_SET_PDEATHSIG = 1


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count after its ')'.
    return stat.rpartition(")")[2].split()[19]


def identity(pid: int) -> str:
    """`<pid>.<start time>`: names one process for as long as the machine runs."""
    return f"{pid}.{start_time(pid)}"


def alive(ident: str) -> bool:
    """The process named by `identity()` still runs (not a later one with its pid)."""
    pid, _, started = ident.partition(".")
    return pid.isdigit() and start_time(int(pid)) == started


@dataclass(frozen=True)
class Journal:
    """Where one build records the processes it starts."""

    directory: Path
    owner: str

    def record(self, pid: int) -> None:
        started = start_time(pid)
        if started is None:
            return  # already gone: nothing to reclaim
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            (self.directory / f"{pid}.{started}").write_text(f"{pgid} {self.owner}\n")

    def forget(self, pid: int) -> None:
        for path in self.directory.glob(f"{pid}.*"):
            path.unlink(missing_ok=True)


_current: Journal | None = None


@contextmanager
def journal(directory: Path) -> Iterator[Journal]:
    """Record the processes started until the end of the block in `directory`.

    Tools started with eib's own environment inherit the owner mark from it.
    """
    global _current
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    current = Journal(directory, identity(os.getpid()))
    (directory / OWNER_FILE).write_text(current.owner + "\n")
    previous, previous_mark = _current, os.environ.get(OWNER_VAR)
    _current = current
    os.environ[OWNER_VAR] = current.owner
    try:
        yield current
    finally:
        _current = previous
        if previous_mark is None:
            os.environ.pop(OWNER_VAR, None)
        else:
            os.environ[OWNER_VAR] = previous_mark


def child_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """`env` with the running build's owner mark (None: eib's own, which has it)."""
    if env is None or _current is None:
        return None if env is None else dict(env)
    return {**env, OWNER_VAR: _current.owner}


def without_mark(env: Mapping[str, str]) -> dict[str, str]:
    """An environment for a process meant to outlive the build (a shared server)."""
    return {k: v for k, v in env.items() if k != OWNER_VAR}


def _die_with_parent(parent: int) -> Callable[[], None]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def preexec() -> Callable[[], None] | None:
    """For `Popen(preexec_fn=…)` while a build runs: the child dies with eib."""
    return _die_with_parent(os.getpid()) if _current is not None else None


def spawned(pid: int) -> None:
    if _current is not None:
        _current.record(pid)


def reaped(pid: int) -> None:
    if _current is not None:
        _current.forget(pid)


def _kill(pid: int, pgid: int | None, why: str) -> None:
    """SIGKILL `pid`, and its whole group when it leads one of its own."""
    log.info("killing pid %d (%s)", pid, why)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid is not None and pgid == pid:
            os.killpg(pgid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def reclaim_journal(directory: Path) -> int:
    """End what a gone build recorded in `directory`; return how many were running."""
    if not directory.is_dir():
        return 0
    ended = 0
    for path in directory.iterdir():
        pid, _, started = path.name.partition(".")
        if not pid.isdigit():
            continue
        try:
            pgid_text, owner = path.read_text().split()
        except (OSError, ValueError):
            owner, pgid_text = "", ""
        if owner and alive(owner):
            continue
        if start_time(int(pid)) == started:
            pgid = int(pgid_text) if pgid_text.isdigit() else None
            _kill(int(pid), pgid, f"left by the build {owner or 'that is gone'}")
            ended += 1
        path.unlink(missing_ok=True)
    return ended


def mark_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = f"{OWNER_VAR}=".encode()
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def marked_orphans() -> list[tuple[int, str]]:
    """(pid, owner) of every process carrying the mark of a build that is gone."""
    found: list[tuple[int, str]] = []
    me = os.getpid()
    owners: dict[str, bool] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        mark = mark_of(int(entry))
        if mark is None:
            continue
        if mark not in owners:
            owners[mark] = alive(mark)
        if not owners[mark]:
            found.append((int(entry), mark))
    return found


def reclaim_orphans(rounds: int = 5) -> int:
    """SIGKILL every process a gone build left anywhere on the host; return how many.

    Repeated a few times: a process may fork between the scan and the kill.
    """
    ended = 0
    for _ in range(rounds):
        found = marked_orphans()
        if not found:
            break
        for pid, owner in found:
            try:
                pgid: int | None = os.getpgid(pid)
            except ProcessLookupError:
                continue
            _kill(pid, pgid, f"left by the build {owner}, which is gone")
            ended += 1
        time.sleep(0.05)
    return ended
