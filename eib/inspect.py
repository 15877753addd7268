"""What is inside a disk image: partitions, file systems, deployments, boot entries.

Read-only and mount-free: sfdisk reads the table from the file, debugfs and
dumpe2fs read the ext4 root at its offset, mtools reads the ESP at its
offset. Compressed images are decompressed to a temporary file first.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eib.errors import UserError
from eib.execute.bootloader import parse_entry
from eib.tools import compress, ext4, sfdisk, vfat

EXT4_MAGIC_OFFSET = 1080
ROLE_BY_TYPE = {
    "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "esp",
    "21686148-6449-6E6F-744E-656564454649": "bios",
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "root (x86-64)",
    "44479540-F297-41B2-9AF7-D131D5F0458A": "root (x86)",
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE": "root (arm64)",
    "ef": "esp",
    "83": "linux",
    "dd": "resize marker",
}


# The first bytes of each compressed format, checked before a decompressor runs,
# so a file that is not one is bad input rather than a failed tool.
COMPRESSED_MAGIC = {
    "gz": b"\x1f\x8b",
    "xz": b"\xfd7zXZ\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
}
# Every partition table eib writes (dos, and GPT's protective MBR) ends sector 0 so.
BOOT_SIGNATURE_OFFSET = 510
BOOT_SIGNATURE = b"\x55\xaa"


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


@contextmanager
def raw_image(path: Path) -> Iterator[Path]:
    """`path` itself, or a temporary decompressed copy of a .gz/.xz/.zst image.

    Either way it is checked to hold a partition table, so that `eib inspect`
    of any other file is an error naming it, not a failed sfdisk.
    """
    if not path.exists():
        raise UserError(f"{path}: no such image file")
    if not path.is_file():
        raise UserError(f"{path}: not a disk image (not a regular file)")
    kind = compress.by_suffix(path)
    if kind is None:
        _check_partition_table(path, path)
        yield path
        return
    if not _head(path, 8).startswith(COMPRESSED_MAGIC[kind.kind]):
        raise UserError(f"{path}: not a disk image (not {kind.kind}-compressed)")
    with tempfile.TemporaryDirectory(prefix="eib-inspect-") as tmp:
        dest = Path(tmp) / path.name.rsplit(".", 1)[0]
        compress.decompress_file(path, dest)
        _check_partition_table(dest, path)
        yield dest


def _check_partition_table(raw: Path, named: Path) -> None:
    end = BOOT_SIGNATURE_OFFSET + len(BOOT_SIGNATURE)
    if _head(raw, end)[BOOT_SIGNATURE_OFFSET:end] != BOOT_SIGNATURE:
        raise UserError(f"{named}: not a disk image (no partition table)")


def probe_fs(image: Path, offset: int) -> str | None:
    """'ext4' or 'vfat' (by their magic numbers), else None."""
    with image.open("rb") as disk:
        disk.seek(offset)
        head = disk.read(4096)
    if (
        len(head) > EXT4_MAGIC_OFFSET + 1
        and head[EXT4_MAGIC_OFFSET : EXT4_MAGIC_OFFSET + 2] == b"\x53\xef"
    ):
        return "ext4"
    if head[510:512] == b"\x55\xaa" and (
        head[82:87] == b"FAT32" or head[54:59] in (b"FAT12", b"FAT16")
    ):
        return "vfat"
    return None


def _ls(image: Path, offset: int, path: str) -> list[tuple[str, int]]:
    """(name, mode) of a directory's entries, via `debugfs ls -p`."""
    out = ext4.debugfs(image, [f'ls -p "{path}"'], offset=offset)
    entries = []
    for line in out.splitlines():
        fields = line.split("/")
        if len(fields) >= 7 and fields[5] not in (".", ".."):
            entries.append((fields[5], int(fields[2], 8)))
    return entries


def _cat(image: Path, offset: int, path: str) -> str:
    return ext4.debugfs(image, [f'cat "{path}"'], offset=offset)


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key.strip()):
            values[key.strip()] = value.strip().strip("\"'")
    return values


def ext4_info(image: Path, offset: int) -> dict[str, Any]:
    sb = ext4.superblock(image, offset)
    block = int(sb.get("Block size", "4096"))
    return {
        "type": "ext4",
        "label": ""
        if sb.get("Filesystem volume name") == "<none>"
        else sb.get("Filesystem volume name", ""),
        "uuid": sb.get("Filesystem UUID", ""),
        "size": int(sb.get("Block count", "0")) * block,
        "free": int(sb.get("Free blocks", "0")) * block,
        "inodes": int(sb.get("Inode count", "0")),
        "free_inodes": int(sb.get("Free inodes", "0")),
        "reserved_blocks": int(sb.get("Reserved block count", "0")),
        "features": sb.get("Filesystem features", "").split(),
    }


def vfat_info(image: Path, offset: int) -> dict[str, Any]:
    listing = vfat.list_dir(image, "/", offset=offset, recursive=True)
    files = sorted(
        line.strip().removeprefix("::").rstrip("/")
        for line in listing.splitlines()
        if line.strip().startswith("::") and not line.strip().endswith("/")
    )
    return {"type": "vfat", "label": vfat.label_of(image, offset=offset), "files": files}


def deployments(image: Path, offset: int) -> list[dict[str, Any]]:
    found = []
    for os_name, mode in _ls(image, offset, "/ostree/deploy"):
        if not mode & 0o040000:
            continue
        base = f"/ostree/deploy/{os_name}/deploy"
        for name, dmode in _ls(image, offset, base):
            match = re.fullmatch(r"([0-9a-f]{64})\.(\d+)", name)
            if not match or not dmode & 0o040000:
                continue
            path = f"{base}/{name}"
            text = _cat(image, offset, f"{path}/usr/lib/os-release") or _cat(
                image, offset, f"{path}/etc/os-release"
            )
            flags = ext4.inode_flags(image, [path], offset=offset)[path]
            found.append(
                {
                    "os": os_name,
                    "commit": match.group(1),
                    "serial": int(match.group(2)),
                    "path": path,
                    "immutable": bool(flags & ext4.IMMUTABLE_FL),
                    "os_release": parse_os_release(text),
                }
            )
    return found


def boot_entries(image: Path, offset: int) -> list[dict[str, Any]]:
    entries = []
    for name, _mode in sorted(_ls(image, offset, "/boot/loader/entries")):
        if not name.endswith(".conf"):
            continue
        entry = parse_entry(Path(name), _cat(image, offset, f"/boot/loader/entries/{name}"))
        entries.append(
            {
                "file": name,
                "title": entry.title,
                "version": entry.version,
                "linux": entry.linux,
                "initrd": entry.initrd,
                "options": entry.options,
            }
        )
    return entries


def inspect_image(path: Path) -> dict[str, Any]:
    """Everything `eib inspect` shows, as JSON-ready data."""
    with raw_image(path) as raw:
        table = sfdisk.read_table(raw)
        sector = int(table.get("sectorsize", 512))
        with raw.open("rb") as disk:
            mbr = disk.read(512)
        result: dict[str, Any] = {
            "image": str(path),
            "size": raw.stat().st_size,
            "partition_table": {
                "label": table.get("label"),
                "id": table.get("id"),
                "sector_size": sector,
            },
            "partitions": [],
            "bios_bootloader": "grub" if b"GRUB" in mbr[:440] else None,
            "deployments": [],
            "boot_entries": [],
        }
        for number, part in enumerate(table.get("partitions", []), start=1):
            offset = int(part["start"]) * sector
            ptype = str(part.get("type", ""))
            info: dict[str, Any] = {
                "number": number,
                "start": int(part["start"]),
                "size": int(part["size"]),
                "type": ptype,
                "role": ROLE_BY_TYPE.get(ptype.upper() if len(ptype) > 2 else ptype.lower(), ""),
                "name": part.get("name", ""),
                "uuid": part.get("uuid", ""),
                "attrs": part.get("attrs", ""),
                "filesystem": None,
            }
            kind = probe_fs(raw, offset) if int(part["size"]) else None
            if kind == "ext4":
                info["filesystem"] = ext4_info(raw, offset)
                result["deployments"] += deployments(raw, offset)
                result["boot_entries"] += boot_entries(raw, offset)
            elif kind == "vfat":
                info["filesystem"] = vfat_info(raw, offset)
            result["partitions"].append(info)
        if table.get("label") == "dos":
            result["partition_table"]["resize_marker"] = mbr[498] == 0xDD
    return result
