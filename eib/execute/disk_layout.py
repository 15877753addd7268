"""Partition layouts: which partitions an image has, where, and of what type.

Pure arithmetic from the plan's image settings, so the layout (and the size
check against `image.max_size`) is known before a single byte is written.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from eib.errors import BuildError
from eib.tools.run import run

SECTOR = 512
MiB = 1 << 20
# ext4 defaults the root file system is sized against.
BYTES_PER_INODE = 16384
INODE_SIZE = 256
GiB = 1 << 30

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
# Discoverable Partitions Specification: root partition type per architecture.
DPS_ROOT_GUID = {
    "amd64": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
    "i386": "44479540-F297-41B2-9AF7-D131D5F0458A",
    "arm64": "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
}
# Where the first partition starts, for platforms whose boot firmware lives in
# the gap after the partition table (u-boot on the Pinebook Pro).
PLATFORM_START_SECTOR = {"pinebookpro": 32768}
DEFAULT_START_SECTOR = 2048
# GPT attribute bit 55: "grow this partition and its file system on first boot".
RESIZE_ATTR_BIT = 55
# dos tables have no attributes: the marker is partition entry 4's type byte.
DOS_RESIZE_MARKER_OFFSET = 498
DOS_RESIZE_MARKER = 0xDD
GPT_BACKUP_SECTORS = 33


@dataclass(frozen=True)
class Partition:
    role: str  # "esp", "bios", "root"
    start: int  # sectors
    size: int  # sectors
    type: str  # GPT GUID or dos type byte (hex)
    attrs: tuple[int, ...] = ()
    name: str = ""

    @property
    def offset(self) -> int:
        return self.start * SECTOR

    @property
    def bytes(self) -> int:
        return self.size * SECTOR


@dataclass(frozen=True)
class Layout:
    table: str  # "gpt" or "dos"
    size: int  # bytes of the whole image
    partitions: tuple[Partition, ...] = field(default_factory=tuple)
    resize_marker: bool = False  # dos: write the 0xdd byte

    def get(self, role: str) -> Partition | None:
        return next((p for p in self.partitions if p.role == role), None)

    @property
    def root(self) -> Partition:
        part = self.get("root")
        assert part is not None
        return part


def extra_space(tree_bytes: int, configured: int | None) -> int:
    """Free space added to the root: the recipe's figure, else max(5 %, 1 GiB)."""
    if configured is not None:
        return configured
    return max(tree_bytes * 5 // 100, GiB)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def plan_layout(
    *,
    arch: str,
    platform: str,
    table: str,
    root_bytes: int,
    rootfs_resize: bool,
    sdboot: bool,
) -> Layout:
    """The partitions for `arch`/`platform`, the root holding `root_bytes`."""
    if arch not in DPS_ROOT_GUID:
        raise BuildError(f"no disk layout for architecture '{arch}'", stage="image", step="layout")
    x86 = arch in ("amd64", "i386")
    gpt = table == "gpt"
    sector = PLATFORM_START_SECTOR.get(platform, DEFAULT_START_SECTOR)
    parts: list[Partition] = []
    if x86:
        esp = (500 if sdboot else 62) * MiB // SECTOR
        parts.append(
            Partition("esp", sector, esp, ESP_GUID if gpt else "ef", name="EFI System Partition")
        )
        sector += esp
        if gpt:
            # dos images embed GRUB's core image in the gap after the MBR instead.
            bios = MiB // SECTOR
            parts.append(Partition("bios", sector, bios, BIOS_BOOT_GUID, name="BIOS boot"))
            sector += bios
    root = _round_up(root_bytes, MiB) // SECTOR
    attrs = (RESIZE_ATTR_BIT,) if rootfs_resize and gpt else ()
    root_type = DPS_ROOT_GUID[arch] if gpt else "83"
    parts.append(Partition("root", sector, root, root_type, attrs, name="ostree"))
    sector += root
    end = sector + (GPT_BACKUP_SECTORS if gpt else 0)
    size = _round_up(end * SECTOR, MiB)
    return Layout(table, size, tuple(parts), resize_marker=rootfs_resize and not gpt)


def derived_uuid(seed: str, purpose: str) -> str:
    """A stable UUID for `purpose` from the build seed (reproducible images)."""
    digest = hashlib.sha256(f"{seed}\0{purpose}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def derived_hex(seed: str, purpose: str, length: int) -> str:
    return hashlib.sha256(f"{seed}\0{purpose}".encode()).hexdigest()[:length]


def sfdisk_script(layout: Layout, seed: str | None = None) -> str:
    """The sfdisk input that creates `layout`; GUIDs derived from `seed` if given."""
    lines = [f"label: {layout.table}", "unit: sectors"]
    if seed:
        if layout.table == "gpt":
            lines.append(f"label-id: {derived_uuid(seed, 'disk').upper()}")
        else:
            lines.append(f"label-id: 0x{derived_hex(seed, 'disk', 8)}")
    lines.append("")
    for part in layout.partitions:
        fields = [f"start={part.start}", f"size={part.size}", f"type={part.type}"]
        if layout.table == "gpt":
            fields.append(f'name="{part.name}"')
            if seed:
                fields.append(f"uuid={derived_uuid(seed, 'part-' + part.role).upper()}")
            if part.attrs:
                fields.append('attrs="' + " ".join(f"GUID:{b}" for b in part.attrs) + '"')
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


def measure_tree(root: Path) -> tuple[int, int]:
    """(bytes used, inodes) of the tree, hard links counted once, like du."""
    used = run(["du", "-s", "--block-size=1", root]).stdout.split()[0]
    inodes = run(["du", "-s", "--inodes", root]).stdout.split()[0]
    return int(used), int(inodes)


def _journal_bytes(fs_bytes: int) -> int:
    """mke2fs's default journal size for a file system of this size (4 KiB blocks)."""
    blocks = fs_bytes // 4096
    for limit, journal in (
        (32768, 1024),
        (256 * 1024, 4096),
        (512 * 1024, 8192),
        (4096 * 1024, 16384),
        (8192 * 1024, 32768),
        (16384 * 1024, 65536),
        (32768 * 1024, 131072),
    ):
        if blocks < limit:
            return journal * 4096
    return 262144 * 4096


def root_fs_size(tree_bytes: int, inodes: int, free: int) -> tuple[int, int | None]:
    """(file system bytes, inode count to force) for a tree plus `free` bytes.

    The ext4 metadata (inode tables, journal, group descriptors) is added on
    top, so `free` really is free space after the copy.
    """
    data = tree_bytes + free
    default_inodes = data // BYTES_PER_INODE
    needed = inodes + inodes // 10 + 4096
    force = needed if needed > default_inodes else None
    meta = max(default_inodes, needed) * INODE_SIZE + _journal_bytes(data) + data // 50 + 8 * MiB
    size = -(-(data + meta) // MiB) * MiB
    return size, force
