"""A reproducible `newc` cpio writer for the demo initramfs.

Written here rather than piping through `cpio` so every header field the
kernel ignores (inode numbers, owners, times, device numbers) is fixed: the
same inputs give the same bytes, hence the same OSTree tree checksum.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

_TRAILER = "TRAILER!!!"


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _entry(name: str, mode: int, ino: int, nlink: int, data: bytes) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = b"070701" + b"".join(f"{value:08x}".encode() for value in fields)
    head = header + encoded
    return head + _pad(len(head)) + data + _pad(len(data))


def newc_archive(root: Path) -> bytes:
    """Everything under `root` as a newc archive, in sorted path order, owned
    by root, with mtime 0 and only the permission bits of each file."""
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    out = bytearray()
    for ino, rel in enumerate(paths, start=1):
        path = root / rel
        st = path.lstat()
        perms = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out += _entry(rel, stat.S_IFLNK | 0o777, ino, 1, os.readlink(path).encode())
        elif stat.S_ISDIR(st.st_mode):
            out += _entry(rel, stat.S_IFDIR | perms, ino, 2, b"")
        elif stat.S_ISREG(st.st_mode):
            out += _entry(rel, stat.S_IFREG | perms, ino, 1, path.read_bytes())
        else:
            raise ValueError(f"{path}: only files, directories and symlinks go in an initramfs")
    out += _entry(_TRAILER, 0, 0, 1, b"")
    return bytes(out)


def write_gzip_newc(root: Path, dest: Path) -> None:
    """`root` as a gzip-compressed newc archive at `dest` (no name or time in
    the gzip header, so the bytes depend on the contents alone)."""
    dest.write_bytes(gzip.compress(newc_archive(root), compresslevel=6, mtime=0))
