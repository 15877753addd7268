"""Checksums of the content-addressed files of an archive OSTree repo.

The Flatpak content cache keeps `objects/…` (and summary shards) between
builds. Their names are their checksums, so a cached copy can be checked
before it is stored and before it is served again: a truncated download, a
disk error or anyone editing the cache yields a file whose content does not
match its name, which is then dropped and fetched again instead of failing
every later build.

Metadata objects (`.commit`, `.dirtree`, `.dirmeta`) are the sha256 of
their bytes. A `.filez` holds a file header and zlib-compressed content; its
checksum is over the *uncompressed* header form, `(uuuusa(ayay))` (uid,
gid, mode, rdev, symlink target, xattrs) with its size prefix, followed by
the content. Summary shards (`summaries/<sha256>.gz`) are the sha256 of the
uncompressed summary.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

CHUNK = 1 << 20
METADATA_SUFFIXES = (".commit", ".dirtree", ".dirmeta")


def _offset_size(total: int) -> int:
    """Bytes per framing offset of a GVariant container of `total` bytes."""
    if total <= 0xFF:
        return 1
    if total <= 0xFFFF:
        return 2
    return 4


def _file_header(zheader: bytes) -> bytes:
    """The checksummed `(uuuusa(ayay))` header from a `.filez` one, `(tuuuusa(ayay))`.

    Both tuples hold one framing offset (the end of the symlink string);
    dropping the leading uint64 size moves it 8 bytes and may shrink its width.
    """
    total = len(zheader)
    width = _offset_size(total)
    end_s = int.from_bytes(zheader[total - width:], "little")
    if not 24 <= end_s <= total - width:
        raise ValueError("bad file header")
    body = zheader[8:end_s] + zheader[end_s:total - width]
    new_end = end_s - 8
    for new_width in (1, 2, 4):
        if _offset_size(len(body) + new_width) == new_width:
            break
    return body + new_end.to_bytes(new_width, "little")


def _filez_checksum(path: Path) -> str:
    with path.open("rb") as f:
        size, _pad = struct.unpack(">II", f.read(8))
        header = _file_header(f.read(size))
        digest = hashlib.sha256(struct.pack(">II", len(header), 0) + header)
        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        while chunk := f.read(CHUNK):
            digest.update(inflate.decompress(chunk))
        digest.update(inflate.flush())
    return digest.hexdigest()


def expected_checksum(rel: str) -> str | None:
    """The checksum a repo path's name promises, or None when the name promises none."""
    parts = rel.split("/")
    if len(parts) == 3 and parts[0] == "objects":
        stem, _, _suffix = parts[2].partition(".")
        return parts[1] + stem
    if len(parts) == 2 and parts[0] == "summaries" and parts[1].endswith(".gz"):
        return parts[1].removesuffix(".gz")
    return None


def verifiable(rel: str) -> bool:
    """Whether `verify` can check this repo path (the cache keeps only those)."""
    return expected_checksum(rel) is not None and rel.endswith(
        (*METADATA_SUFFIXES, ".filez", ".gz")
    )


def verify(rel: str, path: Path) -> bool:
    """Whether the file at `path` has the content its repo path `rel` names."""
    expected = expected_checksum(rel)
    if expected is None:
        return False
    try:
        if rel.endswith(".filez"):
            actual = _filez_checksum(path)
        elif rel.endswith(".gz"):
            actual = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
        elif rel.endswith(METADATA_SUFFIXES):
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            actual = digest.hexdigest()
        else:
            return False
    except (OSError, ValueError, zlib.error, EOFError, struct.error, gzip.BadGzipFile):
        return False
    return actual == expected
