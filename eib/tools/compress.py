"""The image compressors: pigz (gz), xz and zstd, all multi-threaded, as pipes.

Compression is the slowest part of publishing an image, so the callers stream
the raw image through the compressor once and hash/sign on the way, rather
than reading finished files again.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import struct
import subprocess
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from eib.errors import BuildError
from eib.tools import owned
from eib.tools.run import require, track, untrack

log = logging.getLogger("eib.tools")

Kind = Literal["gz", "xz", "zstd"]


@dataclass(frozen=True)
class Compressor:
    kind: Kind
    suffix: str
    compress: tuple[str, ...]
    decompress: tuple[str, ...]


COMPRESSORS: dict[str, Compressor] = {
    "gz": Compressor("gz", ".gz", ("pigz", "--no-name", "-c"), ("pigz", "-dc")),
    "xz": Compressor("xz", ".xz", ("xz", "-T0", "-c"), ("xz", "-T0", "-dc")),
    "zstd": Compressor("zstd", ".zst", ("zstd", "-T0", "-q", "-c"), ("zstd", "-T0", "-q", "-dc")),
}


def compressor(kind: str) -> Compressor:
    try:
        return COMPRESSORS[kind]
    except KeyError:
        raise BuildError(f"unknown compression '{kind}' (gz, xz or zstd)") from None


def by_suffix(path: Path) -> Compressor | None:
    """The compressor whose suffix `path` ends with, if any."""
    return next((c for c in COMPRESSORS.values() if path.name.endswith(c.suffix)), None)


def start(
    argv: tuple[str, ...], stdout: IO[bytes] | int, stdin: IO[bytes] | int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start a compressor; the caller streams through it and calls `finish`."""
    require(argv[0])
    log.debug("$ %s", shlex.join(argv))
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                            preexec_fn=owned.preexec())
    owned.spawned(proc.pid)
    track(proc)
    return proc


def finish(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a compressor and turn a failure into a BuildError with its stderr."""
    assert proc.stderr is not None
    try:
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.wait()
    finally:
        untrack(proc)
        if proc.returncode is not None:
            owned.reaped(proc.pid)
    if proc.returncode != 0:
        args = proc.args if isinstance(proc.args, (list, tuple)) else [proc.args]
        command = shlex.join(str(a) for a in args)
        raise BuildError(f"'{command}' exited with {proc.returncode}: {err}")


def decompress_file(source: Path, dest: Path) -> None:
    """Decompress `source` (by its suffix) into `dest`, keeping holes sparse."""
    comp = by_suffix(source)
    if comp is None:
        raise BuildError(f"{source}: not a .gz, .xz or .zst file")
    require(comp.decompress[0])
    log.debug("$ %s < %s > %s", shlex.join(comp.decompress), source, dest)
    with source.open("rb") as src, dest.open("wb") as out:
        proc = subprocess.Popen(
            comp.decompress, stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        try:
            _copy_sparse(proc.stdout, out)
        except BaseException:
            # Stopped (a signal, a full disk): the decompressor must not outlive it.
            proc.kill()
            proc.wait()
            raise
        finish(proc)


def _copy_sparse(src: IO[bytes], out: IO[bytes], block: int = 1 << 20) -> None:
    zero = bytes(block)
    while chunk := src.read(block):
        if chunk == zero[: len(chunk)]:
            out.seek(len(chunk), 1)
        else:
            out.write(chunk)
    out.truncate()


def available(kind: str) -> bool:
    return shutil.which(compressor(kind).compress[0]) is not None


class ParallelGzip:
    """A gzip writer that compresses 1 MiB chunks on every core, like pigz,
    but turns all-zero chunks (the image's free space) into a precomputed
    deflate segment instead of compressing them again.

    Each chunk is deflated on its own and ended with a sync flush, so the
    segments concatenate into one valid deflate stream: the result is a
    single-member gzip file any gunzip reads (members are not concatenated,
    which some decompressors stop after). pigz spends most of an image's
    compression time on its free space; this spends none.
    """

    CHUNK = 1 << 20
    LEVEL = 6

    def __init__(self, sink: Callable[[bytes], None], threads: int | None = None) -> None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        self._sink = sink
        self._threads = threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(max_workers=self._threads)
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._crc = 0
        self._size = 0
        self._zero = bytes(self.CHUNK)
        self._zero_deflated = self._deflate(self._zero)
        # Header: magic, deflate, no flags, mtime 0 (like pigz --no-name), OS unix.
        sink(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")

    @classmethod
    def _deflate(cls, data: bytes) -> bytes:
        engine = zlib.compressobj(cls.LEVEL, zlib.DEFLATED, -15, 9)
        return engine.compress(data) + engine.flush(zlib.Z_SYNC_FLUSH)

    def _submit(self, chunk: bytes) -> None:
        self._crc = zlib.crc32(chunk, self._crc)
        self._size += len(chunk)
        if chunk == self._zero:
            done: Future[bytes] = Future()
            done.set_result(self._zero_deflated)
            self._pending.append(done)
        else:
            self._pending.append(self._pool.submit(self._deflate, chunk))
        while len(self._pending) > 2 * self._threads or (
            self._pending and self._pending[0].done()
        ):
            self._sink(self._pending.popleft().result())

    def write(self, data: bytes) -> None:
        if not self._buffer and len(data) % self.CHUNK == 0:
            view = memoryview(data)
            for start in range(0, len(data), self.CHUNK):
                self._submit(bytes(view[start : start + self.CHUNK]))
            return
        self._buffer += data
        while len(self._buffer) >= self.CHUNK:
            self._submit(bytes(self._buffer[: self.CHUNK]))
            del self._buffer[: self.CHUNK]

    def close(self) -> None:
        if self._buffer:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        while self._pending:
            self._sink(self._pending.popleft().result())
        self._pool.shutdown()
        final = zlib.compressobj(self.LEVEL, zlib.DEFLATED, -15, 9).flush(zlib.Z_FINISH)
        self._sink(final + struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
