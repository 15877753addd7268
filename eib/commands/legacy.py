"""`eib legacy show-config`: the merged INI config as the legacy builder showed it."""

from __future__ import annotations

import sys
from pathlib import Path

from eib.compat.reader import read_tree
from eib.compat.schema import check_schema, schema_files
from eib.compat.showconfig import show_config


def run_show_config(
    config_dir: Path,
    variant: dict[str, str],
    *,
    localdir: Path | None = None,
    sysconfdir: Path | None = None,
    srcdir: Path | None = None,
    resolved: bool = False,
) -> None:
    """Print the public config; schema violations fail like they did in the legacy builder."""
    config = read_tree(config_dir, variant, localdir=localdir, sysconfdir=sysconfdir, srcdir=srcdir)
    check_schema(
        config,
        schema_files(config_dir.resolve(), localdir.resolve() if localdir else None),
        srcdir=Path(config.sections["build"]["srcdir"].value),
    )
    sys.stdout.write(show_config(config, resolved=resolved))
