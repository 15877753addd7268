"""Printing for people: errors on stderr, without a traceback."""

from __future__ import annotations

import sys

from eib.errors import EibError, UserError


def print_error(err: EibError) -> None:
    kind = "error" if isinstance(err, UserError) else "build failed"
    sys.stderr.write(f"eib: {kind}: {err}\n")
