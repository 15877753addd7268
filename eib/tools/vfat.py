"""FAT file systems (the EFI system partition) built with mkfs.vfat -C and mtools.

This kernel cannot mount vfat, and mtools needs nothing from it: it reads and
writes the file system inside a plain file, or at `image@@offset`.
"""

from __future__ import annotations

import os
from pathlib import Path

from eib.tools.run import run

_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def _env(epoch: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_MTOOLS_ENV)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    return env


def _target(image: Path, offset: int) -> str:
    return f"{image}@@{offset}" if offset else str(image)


def make_vfat(
    path: Path, size: int, *, label: str, volume_id: str | None = None, epoch: int | None = None
) -> None:
    """Create `path` holding a FAT file system of `size` bytes (a multiple of 1 KiB)."""
    argv: list[str | Path] = ["mkfs.vfat", "-C", "-n", label]
    if volume_id:
        argv += ["-i", volume_id]
    argv += [path, str(size // 1024)]
    run(argv, env=_env(epoch))


def make_dirs(image: Path, dirs: list[str], *, offset: int = 0, epoch: int | None = None) -> None:
    """Create directories (parents first, as given) inside the FAT image."""
    if dirs:
        target = _target(image, offset)
        run(["mmd", "-D", "s", "-i", target, *[f"::{d}" for d in dirs]], env=_env(epoch))


def copy_in(
    image: Path, source: Path, dest: str, *, offset: int = 0, epoch: int | None = None
) -> None:
    """Copy a host file or directory tree to `dest` inside the FAT image."""
    run(
        ["mcopy", "-s", "-p", "-m", "-o", "-i", _target(image, offset), source, f"::{dest}"],
        env=_env(epoch),
    )


def list_dir(image: Path, path: str = "/", *, offset: int = 0, recursive: bool = False) -> str:
    """`mdir` output for `path` inside the FAT image."""
    argv = ["mdir", "-b"] if recursive else ["mdir"]
    if recursive:
        argv.append("-/")
    return run([*argv, "-i", _target(image, offset), f"::{path}"], env=_env()).stdout


def set_label(image: Path, label: str, *, epoch: int | None = None) -> None:
    """Rewrite the volume label (its directory entry takes SOURCE_DATE_EPOCH's time)."""
    run(["mlabel", "-i", str(image), f"::{label}"], env=_env(epoch))


def label_of(image: Path, *, offset: int = 0) -> str:
    """The volume label (mlabel -s prints ` Volume label is NAME`)."""
    out = run(["mlabel", "-s", "-i", _target(image, offset), "::"], env=_env()).stdout
    return out.strip().removeprefix("Volume label is").strip()
