"""Partition tables written and read with sfdisk, on image files only.

sfdisk works on a plain file, so no loop device (and no kernel partition
parsing, which these build hosts lack) is ever involved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eib.tools.run import run


def write_table(image: Path, script: str) -> None:
    """Write the partition table described by an sfdisk `script` into `image`."""
    run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "never", "--quiet", image],
        input=script,
    )


def read_table(image: Path) -> dict[str, Any]:
    """The `partitiontable` object of `sfdisk --json`."""
    proc = run(["sfdisk", "--json", image])
    table: dict[str, Any] = json.loads(proc.stdout)["partitiontable"]
    return table
