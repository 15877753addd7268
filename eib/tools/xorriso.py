"""ISO 9660 images with xorriso, hybrid so they also work written to a USB stick."""

from __future__ import annotations

from pathlib import Path

from eib.tools.run import run


def make_iso(
    dest: Path,
    *,
    tree: Path,
    volume_id: str,
    efi_image: Path | None = None,
    date: int | None = None,
) -> None:
    """Write `tree` as an ISO; with `efi_image` (a FAT image) it is UEFI-bootable.

    The FAT image is both the El Torito EFI boot image and an appended GPT
    partition, the layout firmware and USB sticks expect from a hybrid ISO.
    """
    argv: list[str | Path] = ["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", volume_id]
    if date is not None:
        import time

        stamp = time.strftime("%Y%m%d%H%M%S00", time.gmtime(date))
        argv += ["--modification-date=" + stamp]
    if efi_image is not None:
        argv += [
            "-append_partition",
            "2",
            "0xef",
            efi_image,
            "-e",
            "--interval:appended_partition_2:all::",
            "-no-emul-boot",
            "-isohybrid-gpt-basdat",
        ]
    argv += ["-o", dest, tree]
    run(argv)
