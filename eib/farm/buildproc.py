"""Run the build child from a worker task and follow its progress."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eib.farm.slots import Slot

log = logging.getLogger("eib.farm.build")

LOG_TAIL_LINES = 20
Event = dict[str, Any]


@dataclass
class ChildOutcome:
    ok: bool
    error: str = ""
    stage: str | None = None
    step: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    returncode: int = 0


class BuildProcess:
    """One build child; `stop()` may be called from another thread."""

    def __init__(self, plan_file: Path, slot: Slot) -> None:
        self.argv = [
            sys.executable, "-m", "eib.farm.child",
            "--plan", str(plan_file),
            "--cache-dir", str(slot.cache),
            "--work-dir", str(slot.work),
            "--output-dir", str(slot.output),
            "--parent", str(os.getpid()),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.stop_reason = ""

    def stop(self, reason: str) -> None:
        """Ask the build to end (SIGTERM: the executor runs its error stage)."""
        with self._lock:
            self.stop_reason = reason
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)

    def run(self, on_event: Callable[[Event], None]) -> ChildOutcome:
        outcome = ChildOutcome(ok=False)
        result: Event | None = None
        with self._lock:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                bufsize=1,
            )
        proc = self.proc
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                try:
                    event: Event = json.loads(line)
                except json.JSONDecodeError:
                    log.info("%s", line.rstrip())
                    continue
                if event.get("event") == "stage_done":
                    outcome.stages[str(event["name"])] = float(event["seconds"])
                if event.get("event") == "result":
                    result = event
                on_event(event)
        finally:
            if proc.poll() is None and result is None:
                proc.terminate()
            outcome.returncode = proc.wait()
        if result is not None:
            outcome.ok = bool(result.get("ok"))
            outcome.error = str(result.get("error") or "")
            outcome.stage = result.get("stage")
            outcome.step = result.get("step")
        else:
            outcome.error = f"the build process ended with status {outcome.returncode}"
        if self.stop_reason and not outcome.ok:
            outcome.error = f"{self.stop_reason}: {outcome.error}"
        return outcome


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except OSError:
        return []


def output_names(output: Path) -> list[str]:
    if not output.is_dir():
        return []
    return sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
