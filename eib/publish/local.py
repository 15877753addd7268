"""Publishing into a local directory (a mounted share, a web server's root).

Files are copied into a hidden temporary directory beside the destination,
which is renamed into place only when every file is there: readers see either
no build or a complete one.  A destination that already exists (a re-publish,
or the error log of an earlier attempt) is swapped atomically with
renameat2(RENAME_EXCHANGE) and kept aside until the whole publish is over:
when another target fails or a signal stops the publish, it is swapped back,
so an interrupted re-publish never loses the build published before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import shutil
import tempfile
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

log = logging.getLogger("eib.publish")

CHUNK = 4 * 1024 * 1024
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

    def begin(self) -> None:
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(
                tempfile.mkdtemp(prefix=f".{self.dest.name}.inprogress-", dir=self.dest.parent)
            )
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
                aside = Path(
                    tempfile.mkdtemp(prefix=f".{self.dest.name}.old-", dir=self.dest.parent)
                )
                self.dest.rename(aside / "old")
                self.previous, self.aside = aside / "old", aside
                self.tmp.rename(self.dest)
            else:
                self.tmp.rename(self.dest)
        except OSError as err:
            raise publish_error(f"moving the build into {self.dest}: {err}", step="local") from err
        self.tmp = None
        self.finished = True

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
