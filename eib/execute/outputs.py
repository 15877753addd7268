"""From a raw disk image to the files a build publishes.

The raw image is read once: one pass streams it through the compressor while
hashing it and feeding the signer, and a second thread hashes and signs the
compressed stream as it comes out. qcow2, ISO and boot.zip are made in
parallel with that pass. Like the legacy builder, only the compressed image
is published; the raw image stays in the work dir, but its size, checksum
and signature are published (installers verify the image after extracting).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eib.digest import sha256_file
from eib.errors import BuildError
from eib.execute.diskfull import is_disk_full, no_space
from eib.tools import compress
from eib.tools.gpg import Signer
from eib.tools.run import end_running_tools

log = logging.getLogger("eib.execute.outputs")

CHUNK = 4 << 20


@dataclass
class Published:
    """One published file and its companions, as the manifest lists it."""

    role: str
    path: Path
    size: int
    sha256: str
    checksum: Path
    signature: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    companions: list[Path] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": self.path.name,
            "size": self.size,
            "sha256": self.sha256,
            "checksum": self.checksum.name,
            "signature": self.signature.name if self.signature else None,
        }
        data.update(self.extra)
        return data


def write_checksum(path: Path, digest: str, name: str | None = None) -> Path:
    """`<path>.sha256` in the format `sha256sum -c` reads."""
    dest = path.with_name(path.name + ".sha256")
    dest.write_text(f"{digest}  {name or path.name}\n")
    return dest


class _SignPipe:
    """A signer fed through a pipe, so data can be signed while it is produced."""

    def __init__(self, signer: Signer, output: Path) -> None:
        read_fd, write_fd = os.pipe()
        self.writer: IO[bytes] = os.fdopen(write_fd, "wb")
        self._reader: IO[bytes] = os.fdopen(read_fd, "rb")
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(signer, output), daemon=True)
        self._thread.start()

    def _run(self, signer: Signer, output: Path) -> None:
        try:
            signer.sign_stream(self._reader, output)
        except BaseException as err:  # re-raised by close()
            self.error = err
        finally:
            self._reader.close()

    def write(self, data: bytes) -> None:
        if self.error is None:
            try:
                self.writer.write(data)
            except BrokenPipeError:
                self.error = self.error or BuildError("gpg stopped reading its input")

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.writer.close()
        self._thread.join()
        if self.error is not None:
            if isinstance(self.error, BuildError):
                raise self.error
            raise BuildError(f"signing failed: {self.error}") from self.error


def _sign_pipe(signer: Signer | None, output: Path) -> _SignPipe | None:
    return _SignPipe(signer, output) if signer else None


def compress_image(
    raw: Path, dest: Path, kind: str, signer: Signer | None, raw_signature: Path
) -> tuple[Published, str]:
    """Compress `raw` into `dest`, hashing and signing both on the way.

    gz goes through `ParallelGzip` (free space costs nothing); xz and zstd
    through their multi-threaded command-line tools. Returns the compressed
    file's record and the raw image's sha256.
    """
    compress.compressor(kind)
    raw_sign = _sign_pipe(signer, raw_signature)
    comp_sig = dest.with_name(dest.name + ".asc")
    comp_sign = _sign_pipe(signer, comp_sig)
    raw_hash, comp_hash = hashlib.sha256(), hashlib.sha256()
    try:
        _compress_into(raw, dest, kind, raw_hash, comp_hash, raw_sign, comp_sign)
    except BaseException as err:
        # gpg ends when its input does: never leave it waiting for more.
        for pipe in (raw_sign, comp_sign):
            if pipe:
                with contextlib.suppress(OSError):
                    pipe.writer.close()
        if is_disk_full(err):
            raise no_space(dest, stage="image") from err
        raise
    for pipe in (raw_sign, comp_sign):
        if pipe:
            pipe.close()
    digest = comp_hash.hexdigest()
    record = Published(
        role="full",
        path=dest,
        size=dest.stat().st_size,
        sha256=digest,
        checksum=write_checksum(dest, digest),
        signature=comp_sig if signer else None,
    )
    return record, raw_hash.hexdigest()


def _compress_into(
    raw: Path,
    dest: Path,
    kind: str,
    raw_hash: Any,
    comp_hash: Any,
    raw_sign: _SignPipe | None,
    comp_sign: _SignPipe | None,
) -> None:
    with dest.open("wb") as sink:

        def emit(chunk: bytes) -> None:
            comp_hash.update(chunk)
            sink.write(chunk)
            if comp_sign:
                comp_sign.write(chunk)

        def feed(write: Callable[[bytes], object]) -> None:
            with raw.open("rb") as source:
                while chunk := source.read(CHUNK):
                    raw_hash.update(chunk)
                    write(chunk)
                    if raw_sign:
                        raw_sign.write(chunk)

        if kind == "gz":
            writer = compress.ParallelGzip(emit)
            feed(writer.write)
            writer.close()
        else:
            # xz and zstd are faster reading the file than a pipe (they learn its
            # size); the raw image's hash and signature read it alongside.
            _through_tool(kind, raw, emit, dest, lambda: feed(lambda _chunk: None))


def _through_tool(
    kind: str,
    raw: Path,
    emit: Callable[[bytes], None],
    dest: Path,
    alongside: Callable[[], None],
) -> None:
    """Run the compressor on `raw`, `emit` its stdout, run `alongside` meanwhile."""
    argv = (*compress.compressor(kind).compress, str(raw))
    proc = compress.start(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            alongside()
        except BaseException as err:
            errors.append(err)

    helper = threading.Thread(target=guarded, daemon=True)
    helper.start()
    failure: BaseException | None = None
    try:
        while chunk := proc.stdout.read(CHUNK):
            emit(chunk)
    except BaseException as err:
        failure = err
        proc.kill()  # it would block on a full pipe otherwise
        raise
    finally:
        helper.join()
        try:
            compress.finish(proc)
        except BuildError as err:
            # Killed because writing its output failed: that first error is the one to report.
            if failure is None:
                raise
            log.warning("%s (after: %s)", err.message, failure)
    if errors:
        raise BuildError(f"reading {raw.name} for {dest.name} failed: {errors[0]}", stage="image")


def finish_file(role: str, path: Path, signer: Signer | None, **extra: Any) -> Published:
    """Checksum and sign a finished output file."""
    digest = sha256_file(path)
    return Published(
        role=role,
        path=path,
        size=path.stat().st_size,
        sha256=digest,
        checksum=write_checksum(path, digest),
        signature=signer.sign_file(path) if signer else None,
        extra=dict(extra),
    )


def make_zip(tree: Path, dest: Path, epoch: int | None = None) -> None:
    """A zip of `tree` with sorted entries and fixed times (reproducible)."""
    import time

    stamp = time.gmtime(epoch if epoch is not None else 315532800)[:6]
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree).as_posix()
            if path.is_dir():
                archive.writestr(zipfile.ZipInfo(rel + "/", stamp), b"")
            else:
                info = zipfile.ZipInfo(rel, stamp)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                # Streamed: a VM disk does not fit in memory.
                big = path.stat().st_size >= zipfile.ZIP64_LIMIT
                with path.open("rb") as src, archive.open(info, "w", force_zip64=big) as out:
                    shutil.copyfileobj(src, out, 1 << 20)


def run_parallel(jobs: dict[str, Callable[[], Published]]) -> dict[str, Published]:
    """Run output jobs concurrently; the first failure is raised after all finish."""
    results: dict[str, Published] = {}
    if not jobs:
        return results
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures: dict[str, Future[Published]] = {k: pool.submit(j) for k, j in jobs.items()}
        errors = []
        for key, future in futures.items():
            try:
                results[key] = future.result()
            except Exception as err:
                errors.append(err)
            except BaseException:
                # A signal: the jobs' tools are ended so that they return now
                # (their own errors no longer matter), and it is raised at once.
                end_running_tools()
                for pending in futures.values():
                    pending.cancel()
                raise
        if errors:
            raise errors[0]
    return results
