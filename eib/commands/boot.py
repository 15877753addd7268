"""`eib boot IMAGE`: boot it in QEMU and wait for the expected console text."""

from __future__ import annotations

import sys
from pathlib import Path


def run_boot(
    image: Path, *, firmware: str, timeout: float, expect: str | None, log_file: Path | None
) -> None:
    import typer

    from eib.boot import boot_image
    from eib.errors import UserError

    if firmware not in ("uefi", "bios"):
        raise UserError(f"--firmware must be 'uefi' or 'bios', not '{firmware}'")
    if not image.is_file():
        raise UserError(f"{image}: no such image file")
    result = boot_image(
        image,
        firmware="uefi" if firmware == "uefi" else "bios",
        timeout=timeout,
        expect=expect,
        log_file=log_file,
    )
    if result.ok:
        sys.stdout.write(
            f"booted ({firmware}) in {result.seconds:.1f} s; console log: {result.log}\n"
        )
        return
    sys.stderr.write(
        f"eib: boot failed ({firmware}): {result.reason} after {result.seconds:.1f} s; "
        f"console log: {result.log}\n--- console tail ---\n{result.tail()}\n"
    )
    raise typer.Exit(1)
