"""qcow2 images from raw ones with qemu-img."""

from __future__ import annotations

from pathlib import Path

from eib.tools.run import run


def convert_qcow2(raw: Path, dest: Path, *, extra: int = 0) -> None:
    """Write a compressed qcow2 of `raw`, its virtual disk grown by `extra` bytes."""
    run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, dest])
    if extra:
        run(["qemu-img", "resize", "-f", "qcow2", dest, f"+{extra}"])


def virtual_size(image: Path) -> int:
    import json

    info = json.loads(run(["qemu-img", "info", "--output=json", image]).stdout)
    return int(info["virtual-size"])
