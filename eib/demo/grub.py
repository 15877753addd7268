"""GRUB images the demo OS ships for the disk assembler to install.

The OS carries its own bootloader binaries (as real OSTree OSes do) so the
image builder needs no GRUB of its own:

* `/usr/lib/grub/i386-pc/boot.img`: the BIOS boot sector, copied from GRUB;
* `/usr/lib/grub/i386-pc/core.img`: the BIOS core image, for the BIOS boot
  partition;
* `/usr/lib/grub/x86_64-efi/grubx64.efi`: the UEFI image, to be copied to
  `EFI/BOOT/BOOTX64.EFI` on the ESP.

Both images embed every module they need and an early config that finds the
ext4 root by its label `ostree` and reads `/boot/grub/grub.cfg` from it, so
the disk assembler only has to write that grub.cfg (from the deployment's BLS
entries, paths prefixed with `/boot` since /boot is on the root file system)
into the sysroot; nothing else is loaded from disk.

Installing the BIOS images without `grub-bios-setup`: core.img goes at the
start of the BIOS boot partition (LBA S) with the u64 at its offset 0x1f4 set
to S + 1; boot.img's first 440 bytes go over the MBR with the u64 at offset
0x5c set to S.  See docs/demo.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from eib.errors import BuildError
from eib.tools.run import run

GRUB_LIB = Path("/usr/lib/grub")

EARLY_CONFIG = """search --no-floppy --label ostree --set=root
set prefix=($root)/boot/grub
configfile ($root)/boot/grub/grub.cfg
"""

_COMMON_MODULES = (
    "part_gpt",
    "part_msdos",
    "ext2",
    "search",
    "search_label",
    "search_fs_uuid",
    "search_fs_file",
    "configfile",
    "normal",
    "linux",
    "echo",
    "test",
    "ls",
    "cat",
    "boot",
    "serial",
    "terminal",
    "gzio",
    "minicmd",
    "sleep",
    "reboot",
    "halt",
    "loadenv",
)
BIOS_MODULES = ("biosdisk", *_COMMON_MODULES)
EFI_MODULES = ("fat", "efi_gop", "all_video", *_COMMON_MODULES)


def _mkimage(platform: str, modules: tuple[str, ...], config: Path, dest: Path) -> None:
    mod_dir = GRUB_LIB / platform
    missing = [m for m in modules if not (mod_dir / f"{m}.mod").is_file()]
    if missing:
        raise BuildError(
            f"GRUB modules for {platform} missing in {mod_dir}: {', '.join(missing)}"
            f" (install grub-{'pc' if platform == 'i386-pc' else 'efi-amd64'}-bin)",
            stage="demo",
            step="grub",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(
        [
            "grub-mkimage",
            "-O",
            platform,
            "-d",
            mod_dir,
            "-c",
            config,
            "-p",
            "/boot/grub",
            "-o",
            dest,
            *modules,
        ]
    )
    dest.chmod(0o644)


def install_grub_images(usr_lib: Path, work: Path) -> None:
    """Write boot.img, core.img and grubx64.efi under `usr_lib` (the tree's
    `/usr/lib`)."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "early-grub.cfg"
    config.write_text(EARLY_CONFIG)
    bios = usr_lib / "grub" / "i386-pc"
    bios.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GRUB_LIB / "i386-pc" / "boot.img", bios / "boot.img")
    (bios / "boot.img").chmod(0o644)
    _mkimage("i386-pc", BIOS_MODULES, config, bios / "core.img")
    _mkimage("x86_64-efi", EFI_MODULES, config, usr_lib / "grub" / "x86_64-efi" / "grubx64.efi")
