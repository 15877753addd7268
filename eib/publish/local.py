"""Publishing into a local directory (a mounted share, a web server's root).

Files are copied into a hidden temporary directory beside the destination,
which is renamed into place only when every file is there: readers see either
no build or a complete one.  A destination that already exists (a re-publish,
or the error log of an earlier attempt) is swapped atomically with
renameat2(RENAME_EXCHANGE) and kept aside until the whole publish is over:
when another target fails or a signal stops the publish, it is swapped back,
so an interrupted re-publish never loses the build published before.

The hidden dirs are named after their publish's process (`<pid>.<start
time>`): a SIGKILL leaves them behind, and the next publish to the same
destination removes those whose process is gone (putting a build that was
set aside back in place when nothing took its place).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from eib.model.recipe import LocalTarget as LocalSettings
from eib.publish.targets import (
    MARKER,
    ProgressMeter,
    PublishFile,
    Target,
    join_path,
    publish_error,
)
from eib.tools.owned import alive, identity

log = logging.getLogger("eib.publish")

CHUNK = 4 * 1024 * 1024
INPROGRESS = "inprogress"
OLD = "old"
# Hidden dirs whose name holds no owner (made by an earlier eib) are removed after this.
UNNAMED_OWNER_AGE = 24 * 3600
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False when the kernel or libc cannot."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return bool(rc == 0)


def copy_hashed(src: Path, dest: Path, meter: ProgressMeter, name: str) -> str:
    """Copy `src` to `dest` and return the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with src.open("rb") as fin, dest.open("wb") as fout:
        while block := fin.read(CHUNK):
            fout.write(block)
            digest.update(block)
            meter.add(name, len(block))
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dest)
    dest.chmod(0o644)
    return digest.hexdigest()


def _abandoned(path: Path, owner: str) -> bool:
    """The publish that made `path` is gone (an unnamed owner: older than a day)."""
    pid, _, started = owner.partition(".")
    if pid.isdigit() and started:
        return not alive(owner)
    return time.time() - path.lstat().st_mtime > UNNAMED_OWNER_AGE


class LocalTarget(Target):
    kind = "local"

    def __init__(self, target: LocalSettings, prefix: str) -> None:
        self.dest = Path(join_path(target.path, prefix))
        self.tmp: Path | None = None
        # The build this publish replaced, and the hidden dir holding it, until close().
        self.previous: Path | None = None
        self.aside: Path | None = None
        self.finished = False

    @property
    def location(self) -> str:
        return str(self.dest)

    def _hidden(self, kind: str) -> str:
        return f".{self.dest.name}.{kind}-"

    def begin(self) -> None:
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self.reclaim_stale()
            self.tmp = Path(tempfile.mkdtemp(
                prefix=f"{self._hidden(INPROGRESS)}{identity(os.getpid())}-", dir=self.dest.parent
            ))
            (self.tmp / MARKER).touch()
        except OSError as err:
            raise publish_error(f"cannot create {self.dest}: {err}", step="local") from err

    def upload(self, files: Sequence[PublishFile], meter: ProgressMeter) -> None:
        assert self.tmp is not None, "begin() comes first"
        for f in files:
            out = self.tmp / f.name
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = copy_hashed(f.path, out, meter, f.name)
            except OSError as err:
                raise publish_error(
                    f"copying {f.name} to {self.dest}: {err}", step="local"
                ) from err
            if digest != f.sha256:
                raise publish_error(
                    f"{f.name} changed while it was published (sha256 {digest}, "
                    f"expected {f.sha256})",
                    step="local",
                )
            log.info("published %s to %s", f.name, self.dest)

    def finish(self) -> None:
        """Move the build into place; a build it replaces is kept aside until `close`,
        so that `abort` (another target failed, or a signal) can put it back."""
        assert self.tmp is not None, "begin() comes first"
        try:
            (self.tmp / MARKER).unlink()
            for d in (self.tmp, *(p for p in self.tmp.rglob("*") if p.is_dir())):
                d.chmod(0o755)
            if self.dest.exists() and exchange(self.tmp, self.dest):
                self.previous = self.aside = self.tmp  # the swap left the old build here
            elif self.dest.exists():
                aside = Path(tempfile.mkdtemp(
                    prefix=f"{self._hidden(OLD)}{identity(os.getpid())}-", dir=self.dest.parent
                ))
                self.dest.rename(aside / "old")
                self.previous, self.aside = aside / "old", aside
                self.tmp.rename(self.dest)
            else:
                self.tmp.rename(self.dest)
        except OSError as err:
            raise publish_error(f"moving the build into {self.dest}: {err}", step="local") from err
        self.tmp = None
        self.finished = True

    def reclaim_stale(self) -> None:
        """Remove the hidden dirs of publishes to this destination that were killed."""
        for kind in (INPROGRESS, OLD):
            prefix = self._hidden(kind)
            for path in self.dest.parent.iterdir():
                if not path.name.startswith(prefix) or not path.is_dir() or path.is_symlink():
                    continue
                owner = path.name[len(prefix):].rpartition("-")[0]
                if not _abandoned(path, owner):
                    continue
                if kind == OLD and (path / "old").is_dir() and not self.dest.exists():
                    log.info("restoring %s, set aside by a publish that was killed", self.dest)
                    (path / "old").rename(self.dest)
                log.info("removing %s, left by a publish that was killed", path)
                shutil.rmtree(path, ignore_errors=True)

    def abort(self) -> None:
        """Remove what this publish added; a build published before it is restored."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if not self.finished:
            return
        self.finished = False
        previous, aside = self.previous, self.aside
        self.previous = self.aside = None
        if previous is None or aside is None:
            shutil.rmtree(self.dest, ignore_errors=True)
            return
        if not exchange(previous, self.dest):
            shutil.rmtree(self.dest, ignore_errors=True)
            previous.rename(self.dest)
        shutil.rmtree(aside, ignore_errors=True)

    def close(self) -> None:
        """Drop the replaced build once the publish is over (it succeeded or was undone)."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
        self.previous = self.aside = None

    def put_log(self, log_file: PublishFile) -> None:
        try:
            self.dest.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{log_file.name}.", dir=self.dest)
            os.close(fd)
            tmp = Path(tmp_name)
            shutil.copyfile(log_file.path, tmp)
            tmp.chmod(0o644)
            tmp.replace(self.dest / log_file.name)
        except OSError as err:
            raise publish_error(
                f"copying {log_file.name} to {self.dest}: {err}", step="local"
            ) from err
