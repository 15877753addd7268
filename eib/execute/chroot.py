"""Running a command inside the deployment, as if on the final system.

The deployment gets its own `/proc` and `/sys`, the host's `/dev` and
`/dev/pts`, a fresh tmpfs `/tmp`, the OS's persistent `/var` and the sysroot
at `/sysroot`.  Every mount is private (nothing propagates back to the host)
and undone in reverse order on exit, and any process left running inside is
killed, whether the command succeeded or not.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eib.execute.mounts import MountStack, kill_processes_under

log = logging.getLogger("eib.execute.chroot")

MOUNT_POINTS = ("proc", "sys", "dev", "dev/pts", "tmp", "var", "sysroot")


def _ensure_mount_points(deployment: Path) -> None:
    """Create missing mount points; ostree makes the deployment root immutable."""
    missing = [deployment / p for p in MOUNT_POINTS if not (deployment / p).is_dir()]
    missing = [p for p in missing if p.parent != deployment / "dev"]
    if not missing:
        return
    subprocess.run(["chattr", "-i", str(deployment)], capture_output=True, check=False)
    try:
        for path in missing:
            path.mkdir(parents=True, exist_ok=True)
    finally:
        subprocess.run(["chattr", "+i", str(deployment)], capture_output=True, check=False)


@contextmanager
def chroot_mounts(deployment: Path, sysroot: Path, os_var: Path) -> Iterator[Path]:
    """Mount what a chroot needs into `deployment`; yield the deployment's /tmp."""
    _ensure_mount_points(deployment)
    with MountStack() as stack:
        try:
            stack.mount(deployment / "proc", ["-t", "proc", "proc"])
            stack.mount(deployment / "sys", ["-t", "sysfs", "sysfs"])
            stack.bind(Path("/dev"), deployment / "dev")
            stack.bind(Path("/dev/pts"), deployment / "dev" / "pts")
            stack.mount(deployment / "tmp", ["-t", "tmpfs", "-o", "mode=1777", "tmpfs"])
            stack.bind(os_var, deployment / "var")
            stack.bind(sysroot, deployment / "sysroot")
            yield deployment / "tmp"
        finally:
            kill_processes_under(deployment)
