"""The `eib` program: quick commands go to a warm server, the rest run here.

This module is what every `eib` invocation imports first, so it imports only
the standard library; typer, pydantic and the rest load in the server (or,
for builds and when no server is up, in `eib.cli`).
"""

from __future__ import annotations

import sys


def main() -> int:
    from eib.server.client import run_on_server

    code = run_on_server(sys.argv)
    if code is not None:
        return code
    import gc

    # Importing the CLI's libraries creates a few hundred thousand objects and
    # no garbage; collecting during it costs ~15 ms.  Collection resumes for
    # the command itself, with the imported objects frozen out of its way.
    gc.disable()
    from eib.cli import main as run_in_process

    gc.freeze()
    gc.enable()
    run_in_process()
    return 0
