"""`eib inspect IMAGE`: what a disk image holds, as tables or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _size(value: int) -> str:
    from eib.execute.disk import human

    return human(value)


def run_inspect(image: Path, *, as_json: bool) -> None:
    from eib.inspect import inspect_image

    data = inspect_image(image)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    render(data)


def render(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table_info = data["partition_table"]
    console.print(
        f"[bold]{data['image']}[/bold]: {_size(data['size'])}, "
        f"{table_info['label']} partition table {table_info.get('id') or ''}"
        + (", BIOS boot code: GRUB" if data.get("bios_bootloader") else "")
        + (", resize marker 0xdd" if table_info.get("resize_marker") else "")
    )
    parts = Table(title="Partitions")
    for column in ("#", "start", "size", "type", "role", "attrs", "file system", "label", "free"):
        parts.add_column(column)
    for part in data["partitions"]:
        fs = part.get("filesystem") or {}
        parts.add_row(
            str(part["number"]),
            str(part["start"]),
            _size(part["size"] * table_info["sector_size"]),
            part["type"],
            part["role"],
            part["attrs"] or "",
            fs.get("type", ""),
            fs.get("label", ""),
            _size(fs["free"]) if "free" in fs else "",
        )
    console.print(parts)
    for part in data["partitions"]:
        fs = part.get("filesystem") or {}
        if fs.get("type") == "vfat":
            console.print(f"[bold]ESP files[/bold] (partition {part['number']}):")
            for name in fs["files"]:
                console.print(f"  {name}")
    deps = Table(title="Deployments")
    for column in ("os", "commit", "serial", "version", "immutable"):
        deps.add_column(column)
    for dep in data["deployments"]:
        release = dep["os_release"]
        deps.add_row(
            dep["os"],
            dep["commit"],
            str(dep["serial"]),
            release.get("PRETTY_NAME") or release.get("VERSION", ""),
            "yes" if dep["immutable"] else "no",
        )
    console.print(deps)
    entries = Table(title="Boot entries")
    for column in ("file", "title", "linux", "options"):
        entries.add_column(column, overflow="fold")
    for entry in data["boot_entries"]:
        entries.add_row(entry["file"], entry["title"], entry["linux"], entry["options"])
    console.print(entries)
