"""The dirs eib writes into as root, checked before use, and files created safely there.

eib runs as root. A build dir that another user owns or may write into (or
one of its parents) lets that user replace what root writes next: a symlink
swapped in for the raw disk image makes root partition whatever it points
at. So every work and output dir is checked before a build touches it,
missing dirs are created 0700, files eib makes are created `O_EXCL |
O_NOFOLLOW`, and a work dir is emptied only when eib made it (its marker
file is there): `--work-dir ~/project` is refused, never wiped.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path
from typing import BinaryIO

from eib.errors import BuildError, UserError

MARKER = ".eib-work-dir"
MARKER_TEXT = b"This directory is an eib work dir: eib empties it at the start of each build.\n"
PRIVATE_MODE = 0o700


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _trusted(uid: int) -> bool:
    """root's own files, and the caller's when eib runs unprivileged."""
    return uid in (0, os.geteuid())


def check_dir(path: Path, *, key: str) -> None:
    """Refuse `path` when it, or a dir above it, could be changed by another user.

    The dir itself must be writable by its owner only; a parent may be
    group/world-writable only with the sticky bit (like /tmp), where other
    users cannot rename or delete what eib puts there.
    """
    real = path.resolve()
    for current in (real, *real.parents):
        try:
            st = os.stat(current)
        except FileNotFoundError:
            continue
        if not _trusted(st.st_uid):
            raise UserError(
                f"{current} is owned by {_user(st.st_uid)}: that user could replace "
                f"what eib writes in {path}",
                key=key,
                hint="use a dir owned by root (default under /var/lib/eib)",
            )
        if not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            continue
        sticky = bool(st.st_mode & stat.S_ISVTX)
        if current == real or not sticky:
            mode = stat.filemode(st.st_mode)
            raise UserError(
                f"{current} ({mode}) is writable by other users"
                + ("" if current == real else " and has no sticky bit")
                + f": they could replace what eib writes in {path}",
                key=key,
                hint=f"chmod go-w {current}, or choose another dir",
            )


def ensure_private_dir(path: Path, *, key: str) -> None:
    """Create `path` and its missing parents 0700, then `check_dir` it."""
    path = path.absolute()
    missing = []
    for current in (path, *path.parents):
        if os.path.lexists(current):
            break
        missing.append(current)
    for current in reversed(missing):
        try:
            os.mkdir(current, PRIVATE_MODE)
        except FileExistsError:
            pass  # made meanwhile: check_dir judges whoever made it
        except OSError as err:
            raise UserError(f"cannot create {current}: {err.strerror}", key=key) from None
    if not path.is_dir():
        raise UserError(f"{path} is not a directory", key=key)
    check_dir(path, key=key)


def _has_marker(work: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(work / MARKER).st_mode)
    except FileNotFoundError:
        return False


def claim_work_dir(work: Path, *, key: str = "--work-dir") -> None:
    """Make `work` eib's: create it (0700) or adopt it when empty; refuse anything else.

    The marker file says eib made the dir, so later builds may empty it. A
    non-empty dir without it is someone's data and is left alone.
    """
    ensure_private_dir(work, key=key)
    if _has_marker(work):
        return
    if any(work.iterdir()):
        raise UserError(
            f"{work} is not empty and is not an eib work dir (no {MARKER} file); "
            "eib empties its work dir, so it refuses this one",
            key=key,
            hint="choose a new or empty directory",
        )
    with create_new(work / MARKER) as handle:
        handle.write(MARKER_TEXT)


def create_new(path: Path, mode: int = 0o600) -> BinaryIO:
    """Open a new file for writing; fail when anything (a symlink included) is already there.

    eib removes its previous files before making new ones; whatever
    appears at the name in between was put there by someone else.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ELOOP):
            raise BuildError(
                f"refusing to write {path}: something appeared at that name after eib "
                "removed it (another process is changing eib's work dir)"
            ) from None
        raise BuildError(f"cannot create {path}: {err.strerror}") from None
    return os.fdopen(fd, "wb")
