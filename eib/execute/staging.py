"""The output dir only ever holds whole builds.

A build writes into a hidden staging dir inside the output dir (`.eib-new-
<pid>`: same file system, so no copy at the end) and, once everything is
made, synced to disk and published, swaps it in: the previous build's files
are moved aside, the new ones renamed into place, the old ones removed.
Until then the previous build stays untouched, and a build killed halfway
leaves nothing under the final names.

A `FAILED` file says a dir's image set is not to be trusted: it is written
before the swap starts and removed when it ends (so even a SIGKILL in
between leaves the mark), with the failure into the files of a failed build,
and into the output dir itself when a run that continues an earlier one
(`--stages manifest,publish`) fails.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eib.errors import UserError

log = logging.getLogger("eib.execute.staging")

STAGING_PREFIX = ".eib-new-"
OLD_PREFIX = ".eib-old-"
FAILED = "FAILED"
FAILED_DIR = "failed"
_BLOCKED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _ours(name: str) -> bool:
    return name.startswith((STAGING_PREFIX, OLD_PREFIX))


def visible(output: Path) -> list[Path]:
    """The output dir's entries, without eib's own staging dirs."""
    return sorted(p for p in output.iterdir() if not _ours(p.name))


def reclaim(output: Path) -> None:
    """Remove staging dirs a killed build left (the caller holds the output dir's lock)."""
    for path in output.iterdir():
        if _ours(path.name):
            log.info("removing %s, left by an earlier build", path)
            _remove(path)


def check_output_dir(output: Path, log_name: str) -> None:
    """Refuse an output dir holding anything but a previous build (it would be replaced)."""
    if visible(output) and not (output / log_name).exists():
        raise UserError(
            f"output dir {output} is not empty and holds no previous build",
            key="--output-dir",
            hint="choose an empty or new directory",
        )


def holds_finished_build(output: Path, log_name: str) -> bool:
    return (output / log_name).is_file() and not (output / FAILED).exists()


def last_log(output: Path, log_name: str) -> Path:
    """The log of the last build that ran in `output`, failed or not."""
    failed = output / FAILED_DIR / log_name
    return failed if failed.is_file() else output / log_name


def begin(output: Path) -> Path:
    """A new, empty staging dir for this build's outputs."""
    staging = output / f"{STAGING_PREFIX}{os.getpid()}"
    if staging.exists():
        _remove(staging)
    staging.mkdir(mode=0o700)
    return staging


def write_marker(directory: Path, text: str) -> None:
    """`FAILED` in `directory`, written whole (temporary name, fsync, rename)."""
    tmp = directory / f".{FAILED}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / FAILED)
    _fsync_dir(directory)


def clear_marker(directory: Path) -> None:
    (directory / FAILED).unlink(missing_ok=True)


def discard_outputs(staging: Path, log_name: str, message: str) -> None:
    """A failed build's outputs: only its log stays, next to a `FAILED` note."""
    for path in staging.iterdir():
        if path.name != log_name:
            _remove(path)
    write_marker(staging, f"this build failed: {message}")


def replace_outputs(staging: Path, output: Path, log_name: str) -> None:
    """Swap the staging dir's files in for the output dir's, and remove the old ones."""
    sync_tree(staging)
    old = output / f"{OLD_PREFIX}{os.getpid()}"
    with _signals_held():
        write_marker(output, f"replacing the build in {output} (pid {os.getpid()}); "
                             "if this stays, that was interrupted")
        old.mkdir(mode=0o700)
        for path in visible(output):
            if path.name != FAILED:
                os.rename(path, old / path.name)
        # The log last: a dir with a build's log holds that whole build.
        for path in sorted(staging.iterdir(), key=lambda p: (p.name == log_name, p.name)):
            if path.name != FAILED:
                os.rename(path, output / path.name)
        _fsync_dir(output)
        if not (staging / FAILED).exists():
            clear_marker(output)
        else:
            os.replace(staging / FAILED, output / FAILED)
        _fsync_dir(output)
    staging.rmdir()
    _remove(old)


def settle_failed(staging: Path, output: Path, log_name: str) -> Path:
    """Put a failed build's files where the user finds them; return that dir.

    A finished previous build is kept as it is and the failed build's files
    go to `<output>/failed/`; otherwise they replace what the dir holds.
    """
    if holds_finished_build(output, log_name):
        dest = output / FAILED_DIR
        if dest.exists() or dest.is_symlink():
            _remove(dest)
        os.rename(staging, dest)
        _fsync_dir(output)
        return dest
    replace_outputs(staging, output, log_name)
    return output


def sync_tree(top: Path) -> None:
    """fsync every file and dir below `top`, so a rename never exposes unwritten data."""
    for root, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Defer SIGTERM/SIGINT/SIGHUP while the dir is swapped (a few renames)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
