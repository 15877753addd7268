"""Progress people (and machines) can follow: one reporter, several faces.

Stages never compute rates or draw bars: a long step wraps its work in
`watching(monitor, step, measure, total)`, which samples `measure()` (bytes
written so far, objects pulled, …) from a thread and hands the numbers to the
monitor.  The monitor decides what to show: a rich progress bar with rate and
ETA on a terminal, throttled plain lines in CI logs, or one JSON object per
event (`eib run --progress json`) for CI tools and the build farm.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from eib.execute.progress import LineMonitor, Monitor, NullMonitor

PROGRESS_MODES = ("auto", "tty", "plain", "json")


@dataclass(frozen=True)
class Sample:
    """One progress reading of a step."""

    step: str
    done: int
    total: int | None
    unit: str
    elapsed: float
    final: bool = False  # the step's last reading

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.total is None or self.rate <= 0 or self.done >= self.total:
            return None
        return (self.total - self.done) / self.rate


def human(value: float, unit: str) -> str:
    if unit != "B":
        return f"{value:.0f} {unit}"
    for prefix in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or prefix == "GiB":
            return f"{value:.1f} {prefix}" if prefix != "B" else f"{value:.0f} B"
        value /= 1024
    return f"{value:.1f} GiB"


def report(monitor: Monitor, sample: Sample) -> None:
    """Hand a sample to monitors that show progress; others ignore it."""
    show = getattr(monitor, "progress", None)
    if show is not None:
        show(sample)


def tree_bytes(path: Path) -> int:
    """Bytes allocated under `path` (files only), tolerant of files that vanish.

    Directories are opened with O_NOATIME: the tree may be a sysroot whose
    access times end up in the image, and watching must not change it.
    """
    total = 0
    stack: list[tuple[int | None, str]] = [(None, str(path))]
    while stack:
        parent, name = stack.pop()
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME, dir_fd=parent)
        except OSError:
            if parent is not None:
                os.close(parent)
            continue
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((os.dup(fd), entry.name))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        finally:
            os.close(fd)
            if parent is not None:
                os.close(parent)
    return total


def file_bytes(path: Path) -> int:
    """Bytes allocated to one (possibly sparse) file so far."""
    try:
        return path.stat().st_blocks * 512
    except OSError:
        return 0


@contextmanager
def watching(
    monitor: Monitor,
    step: str,
    measure: Callable[[], int],
    total: int | None = None,
    *,
    unit: str = "B",
    interval: float = 1.0,
) -> Iterator[None]:
    """Sample `measure()` every `interval` seconds while the block runs, and
    once more at its end."""
    if isinstance(monitor, NullMonitor):
        yield
        return
    started = time.monotonic()
    stop = threading.Event()
    base = measure()

    def sample(final: bool = False) -> None:
        done = max(measure() - base, 0)
        if total is not None:
            # Allocation (metadata, journal) can run past the payload's size.
            done = min(done, total)
        report(monitor, Sample(step, done, total, unit, time.monotonic() - started, final))

    def loop() -> None:
        while not stop.wait(interval):
            sample()

    thread = threading.Thread(target=loop, name=f"eib-progress-{step}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sample(final=True)


class JsonMonitor:
    """One JSON object per line and event: stage, step, done/total, elapsed."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.current = ""
        self.step_name = ""
        self.lock = threading.Lock()

    def _emit(self, event: str, **fields: Any) -> None:
        with self.lock:
            record = {"event": event, "stage": self.current, "step": self.step_name,
                      "elapsed": round(time.monotonic() - self.started, 3), **fields}
            self.stream.write(json.dumps(record, sort_keys=True) + "\n")
            self.stream.flush()

    def stage(self, name: str) -> None:
        self.current, self.step_name = name, ""
        self._emit("stage")

    def step(self, name: str) -> None:
        self.step_name = name
        self._emit("step")

    def progress(self, sample: Sample) -> None:
        eta = sample.eta
        self._emit("progress", step=sample.step, done=sample.done, total=sample.total,
                   unit=sample.unit, rate=round(sample.rate, 1),
                   eta=None if eta is None else round(eta, 1), final=sample.final)

    def stage_done(self, name: str, seconds: float) -> None:
        self._emit("stage_done", stage=name, seconds=round(seconds, 3))

    def message(self, text: str) -> None:
        self._emit("message", text=text)

    def close(self) -> None:
        pass


class PlainMonitor(LineMonitor):
    """LineMonitor plus a progress line at most every 10 s per step."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self.last: dict[str, float] = {}

    def progress(self, sample: Sample) -> None:
        now = time.monotonic()
        if now - self.last.get(sample.step, 0.0) < 10 and not sample.final:
            return
        self.last[sample.step] = now
        of = f" of {human(sample.total, sample.unit)}" if sample.total else ""
        eta = f", ETA {sample.eta:.0f} s" if sample.eta is not None else ""
        self._emit(f"[{self.current}] {sample.step}: {human(sample.done, sample.unit)}{of}"
                   f" ({human(sample.rate, sample.unit)}/s{eta})")


class TtyMonitor:
    """A live rich display: the current stage and step, and a bar with rate
    and ETA for each long step."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = Console()
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.bars.start()
        self.status = self.bars.add_task("starting", total=None)
        self.tasks: dict[str, Any] = {}
        self.current = ""

    def stage(self, name: str) -> None:
        self.current = name
        self.bars.update(self.status, description=f"[bold]{name}[/bold]")

    def step(self, name: str) -> None:
        self.bars.update(self.status, description=f"[bold]{self.current}[/bold] · {name}")

    def progress(self, sample: Sample) -> None:
        task = self.tasks.get(sample.step)
        if task is None:
            task = self.bars.add_task(f"  {sample.step}", total=sample.total)
            self.tasks[sample.step] = task
        self.bars.update(task, completed=sample.done, total=sample.total)

    def stage_done(self, name: str, seconds: float) -> None:
        self.console.print(f"[green]✓[/green] {name} ({seconds:.1f} s)")

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.bars.stop()


def select_monitor(mode: str) -> Monitor:
    """The monitor for `eib run --progress MODE` (auto: tty on a terminal, else plain)."""
    if mode == "auto":
        mode = "tty" if sys.stdout.isatty() else "plain"
    if mode == "json":
        return JsonMonitor()
    if mode == "tty":
        return TtyMonitor()
    return PlainMonitor()
