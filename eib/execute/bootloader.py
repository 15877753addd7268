"""Bootloaders taken from the deployment: GRUB (BIOS and EFI), systemd-boot, u-boot.

Nothing is installed from the build host: the OS ships its own boot files
and eib only places them, so the image boots what the OS was tested with.
GRUB's BIOS install is done the way `grub-bios-setup` does it on a disk: the
core image goes into the BIOS boot partition (GPT) or the gap after the MBR
(dos), its first sector's block list is pointed at the rest of it, and the
boot sector learns where the core image starts.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from eib.errors import BuildError
from eib.execute.inroot import files_below, resolve_in_root

log = logging.getLogger("eib.execute.bootloader")

SECTOR = 512
GRUB_BIOS_DIR = "usr/lib/grub/i386-pc"
GRUB_EFI = {
    "amd64": ("usr/lib/grub/x86_64-efi/grubx64.efi", "BOOTX64.EFI"),
    "i386": ("usr/lib/grub/i386-efi/grubia32.efi", "BOOTIA32.EFI"),
}
SDBOOT_EFI = {
    "amd64": ("usr/lib/systemd/boot/efi/systemd-bootx64.efi", "BOOTX64.EFI"),
    "i386": ("usr/lib/systemd/boot/efi/systemd-bootia32.efi", "BOOTIA32.EFI"),
}
UBOOT_SCRIPTS = (
    "usr/lib/u-boot/{platform}/boot.scr",
    "usr/lib/u-boot/boot.scr",
    "usr/share/u-boot/{platform}/boot.scr",
    "usr/share/u-boot/boot.scr",
)

# Offsets in GRUB's boot.img (grub-core/boot/i386/pc/boot.S) and diskboot.img.
BOOT_BPB_START, BOOT_BPB_END = 0x03, 0x5A
BOOT_KERNEL_SECTOR = 0x5C
BOOT_DRIVE = 0x64
BOOT_DRIVE_CHECK = 0x66
BOOT_TABLE_START, BOOT_TABLE_END = 0x1B8, 0x1FE
BLOCKLIST_SIZE = 12
KERNEL_SEGMENT = 0x800 + (SECTOR >> 4)


def read_noatime(path: Path) -> bytes:
    """Read a sysroot file without touching its atime, which the image records."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def copy_noatime(src: Path, dest: Path) -> None:
    dest.write_bytes(read_noatime(src))


@dataclass(frozen=True)
class BootEntry:
    """One Boot Loader Specification entry from `boot/loader/entries`."""

    path: Path
    title: str
    version: str
    linux: str
    initrd: list[str] = field(default_factory=list)
    options: str = ""
    devicetree: str = ""


def parse_entry(path: Path, text: str | None = None) -> BootEntry:
    keys: dict[str, list[str]] = {}
    if text is None:
        text = read_noatime(path).decode(errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        keys.setdefault(key, []).append(value.strip())
    return BootEntry(
        path=path,
        title=keys.get("title", [path.stem])[0],
        version=keys.get("version", [""])[0],
        linux=keys.get("linux", [""])[0],
        initrd=keys.get("initrd", []),
        options=" ".join(keys.get("options", [])),
        devicetree=keys.get("devicetree", [""])[0],
    )


def _version_key(entry: BootEntry) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", entry.version)) or (0,)


def boot_entries(sysroot: Path) -> list[BootEntry]:
    """The BLS entries, newest deployment first (ostree numbers them by version)."""
    entries_dir = sysroot / "boot" / "loader" / "entries"
    entries = [parse_entry(p) for p in sorted(entries_dir.glob("*.conf"))]
    return sorted(entries, key=_version_key, reverse=True)


def root_path(sysroot: Path, path: str) -> str:
    """A BLS path (relative to the boot dir) as seen from the root file system."""
    rel = path.lstrip("/")
    if rel.startswith("boot/") and (sysroot / rel).exists():
        return "/" + rel
    return "/boot/" + rel


def grub_cfg(sysroot: Path, entries: list[BootEntry]) -> str:
    """A grub.cfg with one menuentry per BLS entry; paths are on the root fs.

    The serial console is enabled so headless boots (and `eib boot`) see the
    menu; a GRUB without the serial module just ignores the failed command.
    """
    lines = [
        "# Written by eib from the Boot Loader Specification entries.",
        "set default=0",
        "set timeout=1",
        "if serial --unit=0 --speed=115200; then",
        "  terminal_input --append serial",
        "  terminal_output --append serial",
        "fi",
        "",
    ]
    for entry in entries:
        title = entry.title.replace("'", "")
        lines.append(f"menuentry '{title}' {{")
        lines.append(f"  linux {root_path(sysroot, entry.linux)} {entry.options}".rstrip())
        if entry.initrd:
            lines.append("  initrd " + " ".join(root_path(sysroot, p) for p in entry.initrd))
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_grub_cfg(sysroot: Path) -> Path | None:
    """Write `boot/grub/grub.cfg` into the sysroot; None when there is no entry."""
    entries = boot_entries(sysroot)
    if not entries:
        return None
    dest = sysroot / "boot" / "grub" / "grub.cfg"
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = grub_cfg(sysroot, entries)
    # Rewriting an identical file would only change its ctime (and the image).
    if not dest.is_file() or read_noatime(dest) != text.encode():
        dest.write_text(text)
    log.info("wrote %s with %d entries", dest.relative_to(sysroot), len(entries))
    return dest


def install_uboot_script(deployment: Path, sysroot: Path, platform: str) -> Path | None:
    """Copy the deployment's u-boot `boot.scr` to the root's /boot, if it ships one."""
    for pattern in UBOOT_SCRIPTS:
        src = resolve_in_root(deployment, pattern.format(platform=platform))
        if src.is_file():
            dest = sysroot / "boot" / "boot.scr"
            copy_noatime(src, dest)
            return dest
    return None


def efi_files(deployment: Path, arch: str, sdboot: bool) -> dict[str, Path]:
    """ESP path → deployment file, for the EFI loaders the deployment ships.

    Paths are resolved inside the deployment: a link to `/x` is the OS's /x,
    never the build host's.
    """
    files = {f"EFI/{rel}": src for rel, src in files_below(deployment, "boot/efi/EFI").items()}
    table = SDBOOT_EFI if sdboot else GRUB_EFI
    if arch in table:
        rel, name = table[arch]
        src = resolve_in_root(deployment, rel)
        if src.is_file():
            files[f"EFI/BOOT/{name}"] = src
            if sdboot:
                files[f"EFI/systemd/{src.name}"] = src
        elif sdboot:
            raise BuildError(
                f"image.sdboot is set but the deployment has no /{rel}",
                stage="image",
                step="bootloader",
            )
    return files


def bios_images(deployment: Path) -> tuple[bytes, bytes] | None:
    """(boot.img, core.img) from the deployment's GRUB, or None when not shipped."""
    boot = resolve_in_root(deployment, f"{GRUB_BIOS_DIR}/boot.img")
    core = resolve_in_root(deployment, f"{GRUB_BIOS_DIR}/core.img")
    if not (boot.is_file() and core.is_file()):
        return None
    boot_img, core_img = read_noatime(boot), read_noatime(core)
    if len(boot_img) != SECTOR:
        raise BuildError(f"{boot} is {len(boot_img)} bytes, not one sector", stage="image")
    return boot_img, core_img


def patch_core(core: bytes, first_sector: int) -> bytes:
    """Point diskboot's block list at the core image's sectors after the first."""
    sectors = -(-len(core) // SECTOR)
    if sectors - 1 > 0xFFFF:
        raise BuildError("GRUB core image too large for one block list", stage="image")
    padded = bytearray(core.ljust(sectors * SECTOR, b"\0"))
    first = SECTOR - BLOCKLIST_SIZE
    struct.pack_into("<QHH", padded, first, first_sector + 1, sectors - 1, KERNEL_SEGMENT)
    # The next entry down terminates the list.
    struct.pack_into("<QHH", padded, first - BLOCKLIST_SIZE, 0, 0, 0)
    return bytes(padded)


def patch_boot(boot: bytes, mbr: bytes, core_sector: int) -> bytes:
    """GRUB's boot sector with the disk's BPB area and partition table kept."""
    out = bytearray(boot)
    out[BOOT_BPB_START:BOOT_BPB_END] = mbr[BOOT_BPB_START:BOOT_BPB_END]
    out[BOOT_TABLE_START:BOOT_TABLE_END] = mbr[BOOT_TABLE_START:BOOT_TABLE_END]
    struct.pack_into("<Q", out, BOOT_KERNEL_SECTOR, core_sector)
    out[BOOT_DRIVE] = 0xFF
    # Hard disk: skip the buggy-BIOS drive check, as grub-bios-setup does.
    out[BOOT_DRIVE_CHECK : BOOT_DRIVE_CHECK + 2] = b"\x90\x90"
    out[0x1FE:0x200] = b"\x55\xaa"
    return bytes(out)


def install_bios(
    image: Path, boot_img: bytes, core_img: bytes, *, core_sector: int, room: int
) -> None:
    """Write the core image at `core_sector` (at most `room` bytes) and the boot sector."""
    core = patch_core(core_img, core_sector)
    if len(core) > room:
        raise BuildError(
            f"GRUB core image ({len(core)} bytes) does not fit its {room} bytes of room",
            stage="image",
            step="bootloader",
        )
    with image.open("r+b") as disk:
        mbr = disk.read(SECTOR)
        disk.seek(core_sector * SECTOR)
        disk.write(core)
        disk.seek(0)
        disk.write(patch_boot(boot_img, mbr, core_sector))
