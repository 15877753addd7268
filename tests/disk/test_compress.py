"""The parallel gzip writer: one valid gzip member, zeros skipped, any chunking."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from eib.tools.compress import ParallelGzip, decompress_file

MiB = 1 << 20


@pytest.mark.parametrize("piece", [4 * MiB, 777_777])
def test_parallel_gzip_round_trips(tmp_path: Path, piece: int) -> None:
    data = os.urandom(3 * MiB) + bytes(5 * MiB) + b"text " * 300_000 + bytes(123)
    out = bytearray()
    writer = ParallelGzip(out.extend, threads=2)
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])
    writer.close()
    path = tmp_path / "x.gz"
    path.write_bytes(out)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    assert gzip.decompress(bytes(out)) == data
    # A single member: the header appears once.
    assert bytes(out).count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03") == 1
    # The zero MiBs cost almost nothing.
    assert len(out) < 3 * MiB + 100_000


def test_decompress_file_keeps_holes(tmp_path: Path) -> None:
    data = b"head" + bytes(8 * MiB) + b"tail"
    src = tmp_path / "disk.img.gz"
    src.write_bytes(gzip.compress(data))
    dest = tmp_path / "disk.img"
    decompress_file(src, dest)
    assert dest.read_bytes() == data
    assert os.stat(dest).st_blocks * 512 < 2 * MiB
