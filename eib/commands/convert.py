"""`eib convert INI_DIR OUT_DIR`: YAML recipes from a legacy INI tree."""

from __future__ import annotations

import sys
from pathlib import Path

from eib.compat.convert import convert_tree


def run_convert(ini_dir: Path, out_dir: Path, *, localdir: Path | None = None) -> None:
    written = convert_tree(ini_dir, out_dir, localdir=localdir)
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
