"""Mounts, loop devices and processes below the work dir, and their cleanup.

A hook may fail, hang or leave a daemon behind; the build must still leave
nothing mounted, attached or running under the work dir.  `MountStack`
undoes its own mounts in reverse order; `cleanup_work_dir()` is the sweeping
fallback the error stage and the next build's start rely on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from eib.errors import BuildError
from eib.tools.owned import reclaim_journal
from eib.tools.run import run

log = logging.getLogger("eib.execute.mounts")

# Where a build records the processes it starts (`eib.tools.owned`).
PIDS_DIR = ".pids"


def _inside(path: str, top: Path) -> bool:
    top_s = str(top).rstrip("/")
    return path == top_s or path.startswith(top_s + "/")


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are octal escapes there."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(top: Path) -> list[str]:
    """Mount points below `top`, deepest first (the latest first at one depth).

    Unmounting in that order never leaves a mount hidden under another.
    `top` itself is left out: a work dir on a file system of its own (a
    dedicated disk, a tmpfs) is the user's mount, not one a build made.
    """
    found: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            target = _unescape(line.split()[4])
            if _inside(target, top) and target != str(top).rstrip("/"):
                found.append(target)
    latest_first = list(reversed(found))
    return sorted(latest_first, key=lambda t: t.count("/"), reverse=True)


def unmount(target: str) -> None:
    """Unmount `target`: plainly, then recursively, then lazily as a last resort."""
    for argv in (["umount", target], ["umount", "-R", target], ["umount", "-l", target]):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            log.debug("$ %s", " ".join(argv))
            return
        log.debug("$ %s: %s", " ".join(argv), proc.stderr.strip())
    log.warning("could not unmount %s", target)


class MountStack:
    """Mounts made for one purpose, undone in reverse order on exit (even on error)."""

    def __init__(self) -> None:
        self.targets: list[Path] = []

    def __enter__(self) -> MountStack:
        return self

    def mount(self, target: Path, args: Sequence[str]) -> None:
        """`mount ARGS TARGET --make-private`: private, so nothing propagates elsewhere."""
        run(["mount", "--make-private", *args, str(target)])
        self.targets.append(target)

    def bind(self, source: Path, target: Path) -> None:
        self.mount(target, ["--bind", str(source)])

    def close(self) -> None:
        while self.targets:
            unmount(str(self.targets.pop()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def processes_rooted_under(top: Path) -> list[int]:
    """Pids whose root directory (chroot) is inside `top`."""
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if _inside(root, top):
            pids.append(int(entry))
    return pids


def kill_processes_under(top: Path) -> None:
    """TERM, then KILL, every process chrooted inside `top`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_rooted_under(top)
        if not pids:
            return
        for pid in pids:
            log.info("sending %s to pid %d (root inside %s)", sig.name, pid, top)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        for _ in range(20):
            if not processes_rooted_under(top):
                return
            time.sleep(0.1)
    if processes_rooted_under(top):
        log.warning("processes still running inside %s", top)


def detach_loops_under(top: Path) -> None:
    """Detach loop devices whose backing file lives inside `top`."""
    if shutil.which("losetup") is None:
        return
    proc = subprocess.run(
        ["losetup", "--list", "--json", "--output", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return
    for dev in json.loads(proc.stdout).get("loopdevices", []):
        back = (dev.get("back-file") or "").removesuffix(" (deleted)")
        if back and _inside(back, top):
            log.info("detaching %s (%s)", dev["name"], back)
            subprocess.run(["losetup", "-d", dev["name"]], check=False)


def cleanup_work_dir(top: Path) -> None:
    """Kill, unmount and detach everything that still uses `top`.

    Processes a SIGKILLed build recorded in `top`'s journal are ended first,
    then those chrooted below it; mounts go before anything is removed.
    """
    if not top.exists():
        return
    reclaim_journal(top / PIDS_DIR)
    kill_processes_under(top)
    for target in mounts_under(top):
        unmount(target)
    detach_loops_under(top)
    left = mounts_under(top)
    if left:
        raise BuildError(f"mounts left under {top}: {', '.join(left)}")


def remove_tree(path: Path) -> None:
    """Delete `path`, clearing the immutable bit ostree puts on deployment dirs.

    Never below a mount point: everything under `path` is unmounted first,
    and the removal itself stays on `path`'s file system (`rm
    --one-file-system`), so a bind of the host's `/dev` that appeared
    meanwhile is refused, never emptied.
    """
    if not path.exists():
        return
    cleanup_work_dir(path)
    patterns = ("", "*/", "*/*/")
    for prefix in patterns:
        for deployment in path.glob(f"{prefix}ostree/deploy/*/deploy/*"):
            if deployment.is_dir() and not deployment.is_symlink():
                _chattr_mutable([deployment])
    if _rm_one_file_system(path):
        return
    # An immutable dir somewhere we did not expect: clear the whole tree (nothing is mounted).
    if mounts_under(path):
        raise BuildError(f"refusing to remove {path}: {', '.join(mounts_under(path))} "
                         "mounted below it")
    _chattr_mutable([path], recursive=True)
    if not _rm_one_file_system(path):
        raise BuildError(f"cannot remove {path}")


def _rm_one_file_system(path: Path) -> bool:
    proc = subprocess.run(["rm", "-r", "-f", "--one-file-system", "--", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log.debug("rm -r %s: %s", path, proc.stderr.strip())
        if "different device" in proc.stderr:
            raise BuildError(f"refusing to remove {path}: a file system is mounted below it "
                             f"({proc.stderr.strip().splitlines()[0]})")
    return not path.exists()


def _chattr_mutable(paths: Sequence[Path], recursive: bool = False) -> None:
    flags = ["-R", "-f"] if recursive else ["-f"]
    argv = ["chattr", *flags, "-i", *(str(p) for p in paths)]
    subprocess.run(argv, capture_output=True, check=False)
