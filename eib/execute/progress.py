"""Progress reporting, kept apart from the build logic (osbuild's monitor idea).

Stages call `monitor.stage()` / `monitor.step()`; what a person sees depends
only on the monitor: a live rich line on a terminal, plain timestamped lines
in CI logs, nothing at all in library use.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Protocol


class Monitor(Protocol):
    def stage(self, name: str) -> None: ...
    def step(self, name: str) -> None: ...
    def stage_done(self, name: str, seconds: float) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class NullMonitor:
    def stage(self, name: str) -> None:
        pass

    def step(self, name: str) -> None:
        pass

    def stage_done(self, name: str, seconds: float) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class LineMonitor:
    """One timestamped line per stage and step: readable in CI logs and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.current = ""

    def _emit(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self.stream.write(f"{stamp} {text}\n")
        self.stream.flush()

    def stage(self, name: str) -> None:
        self.current = name
        self._emit(f"[{name}] started")

    def step(self, name: str) -> None:
        self._emit(f"[{self.current}] {name}")

    def stage_done(self, name: str, seconds: float) -> None:
        self._emit(f"[{name}] done in {seconds:.1f} s")

    def message(self, text: str) -> None:
        self._emit(text)

    def close(self) -> None:
        pass


class RichMonitor:
    """A single live status line per stage and step on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=False)
        self.status = self.console.status("starting")
        self.status.start()
        self.current = ""

    def stage(self, name: str) -> None:
        self.current = name
        self.status.update(f"[bold]{name}[/bold]")

    def step(self, name: str) -> None:
        self.status.update(f"[bold]{self.current}[/bold] · {name}")

    def stage_done(self, name: str, seconds: float) -> None:
        self.console.print(f"[green]✓[/green] {name} ({seconds:.1f} s)")

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.status.stop()


def default_monitor() -> Monitor:
    return RichMonitor() if sys.stdout.isatty() else LineMonitor()
