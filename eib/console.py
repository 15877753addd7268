"""Printing for people: errors on stderr, without a traceback."""

from __future__ import annotations

import sys

from eib.errors import EibError, UserError


def one_line(text: str) -> str:
    """`text` on one line: a tool's output quoted in an error is joined with ` / `.

    The whole message, lines and all, stays in the build log and `FAILED`.
    """
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def print_error(err: EibError) -> None:
    kind = "error" if isinstance(err, UserError) else "build failed"
    sys.stderr.write(f"eib: {kind}: {one_line(str(err))}\n")
