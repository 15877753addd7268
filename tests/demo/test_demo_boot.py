"""The demo OS really boots: deploy it with ostree, put the sysroot on an ext4
image labelled `ostree`, boot the deployed kernel and initramfs in QEMU with
the BLS entry's kernel arguments, and wait for the ready marker."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from eib.demo import HOSTNAME, OS_NAME, OSTREE_REF, PRETTY_NAME, READY_MARKER, DemoPaths

QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = 300  # ~10 s on an idle machine; TCG slows down a lot under load


@contextmanager
def _removed(path: Path) -> Iterator[None]:
    """Delete the (large) disk image once the boot is over."""
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def deploy(demo: DemoPaths, sysroot: Path) -> dict[str, str]:
    """Deploy the demo commit into `sysroot`; returns the BLS entry's keys."""
    run("ostree", "admin", "init-fs", sysroot)
    run("ostree", "admin", f"--sysroot={sysroot}", "os-init", OS_NAME)
    run("ostree", f"--repo={sysroot}/ostree/repo", "pull-local", demo.ostree_repo, OSTREE_REF)
    run(
        "ostree",
        "admin",
        f"--sysroot={sysroot}",
        "deploy",
        f"--os={OS_NAME}",
        "--karg=root=LABEL=ostree",
        "--karg=console=ttyS0",
        "--karg=panic=-1",
        OSTREE_REF,
    )
    entries = sorted((sysroot / "boot" / "loader" / "entries").glob("*.conf"))
    assert len(entries) == 1
    bls = {}
    for line in entries[0].read_text().splitlines():
        key, _, value = line.partition(" ")
        bls[key] = value.strip()
    return bls


@pytest.mark.boot
@pytest.mark.slow
def test_deployed_demo_boots_to_ready_marker(
    demo: DemoPaths, sysroot: Path, tmp_path: Path
) -> None:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed")
    bls = deploy(demo, sysroot)
    assert "ostree=/ostree/boot." in bls["options"]
    kernel = sysroot / "boot" / bls["linux"].lstrip("/")
    initrd = sysroot / "boot" / bls["initrd"].lstrip("/")
    assert kernel.is_file() and initrd.is_file()

    disk = tmp_path / "root.img"
    run("mke2fs", "-q", "-t", "ext4", "-L", "ostree", "-d", sysroot, disk, "256M")
    console = tmp_path / "console.log"
    with open(console, "wb") as out, _removed(disk):
        proc = subprocess.run(
            [
                QEMU,
                "-accel",
                "tcg",
                "-m",
                "512",
                "-nographic",
                "-no-reboot",
                "-kernel",
                str(kernel),
                "-initrd",
                str(initrd),
                "-append",
                bls["options"],
                "-drive",
                f"file={disk},if=virtio,format=raw",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=BOOT_TIMEOUT,
        )
    log = console.read_text(errors="replace")
    assert READY_MARKER in log, log[-3000:]
    assert f"PRETTY_NAME={PRETTY_NAME} 1" in log
    assert f"HOSTNAME={HOSTNAME}" in log
    assert f"KERNEL={demo.kernel_version}" in log
    assert proc.returncode == 0  # the OS powered the machine off
