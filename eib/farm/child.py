"""The build child: runs one plan with the executor, reporting as JSON lines.

A worker task runs each build in this separate process (`python -m
eib.farm.child`), so a crash, a leak or a signal in a build never takes the
worker down, and stopping a build is stopping a process.  Progress goes to
stdout as one JSON object per line (stage, step, stage_done, message, and a
final result); the build log goes to `build.txt` as for `eib run`.  The
child asks the kernel for SIGTERM when its parent dies, so a killed worker
does not leave a build running: SIGTERM is the executor's cue to run the
error stage and clean up.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

PR_SET_PDEATHSIG = 1


class JsonMonitor:
    """A Monitor that writes one JSON object per event."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")
        self.stream.flush()

    def stage(self, name: str) -> None:
        self.emit("stage", name=name)

    def step(self, name: str) -> None:
        self.emit("step", name=name)

    def stage_done(self, name: str, seconds: float) -> None:
        self.emit("stage_done", name=name, seconds=round(seconds, 3))

    def message(self, text: str) -> None:
        self.emit("message", text=text)

    def close(self) -> None:
        pass


def die_with_parent(parent: int) -> None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        ctypes.CDLL(libc_name).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eib.farm.child")
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args(argv)
    events = sys.stdout
    monitor = JsonMonitor(events)

    from eib.errors import BuildError, EibError
    from eib.interrupt import Interrupted, install

    # SIGTERM (and SIGINT) stop the build at once, its cleanup included.
    install()
    if args.parent:
        die_with_parent(args.parent)
    try:
        from eib.execute.context import BuildDirs
        from eib.execute.runner import execute
        from eib.model.plan import load_plan_json

        plan = load_plan_json(args.plan.read_text())
        dirs = BuildDirs(cache=args.cache_dir, work=args.work_dir, output=args.output_dir)
        execute(plan, dirs, monitor=monitor)
    except BuildError as err:
        monitor.emit("result", ok=False, error=err.message, stage=err.stage, step=err.step)
        return 1
    except EibError as err:
        monitor.emit("result", ok=False, error=str(err), stage=None, step=None)
        return 2
    except Interrupted as err:
        stage, _, step = err.where.partition("/")
        monitor.emit("result", ok=False, error=f"interrupted by {err.signal_name}",
                     stage=stage or None, step=step or None)
        return err.exit_code
    monitor.emit("result", ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
