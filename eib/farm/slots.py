"""Build slots: private cache, work and output dirs for each concurrent build.

A worker with `--concurrency N`, or several workers given the same dirs on
one host, must never let two builds share a work or cache dir.  A build
takes the first slot whose `flock` is free (`<work>/slot-K.lock`) and holds
it until it ends; the slot's dirs stay for the next build, so its OSTree
repo and stage cache keep paying off.  A killed worker's lock goes with its
process, so its slots are free again at once.

The demo OS is the exception: it is the same for every build, so every
slot links `demo` to the worker's one demo dir (`demo` in its --cache-dir,
or $EIB_DEMO_DIR) instead of building its own copy.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eib.model.plan import Plan

MAX_SLOTS = 64


@dataclass(frozen=True)
class BaseDirs:
    """The worker's --cache-dir, --work-dir and --output-dir."""

    cache: Path
    work: Path
    output: Path


@dataclass(frozen=True)
class Slot:
    number: int
    cache: Path
    work: Path
    output: Path


@contextmanager
def take_slot(base: BaseDirs) -> Iterator[Slot]:
    base.work.mkdir(parents=True, exist_ok=True)
    for number in range(MAX_SLOTS):
        fd = os.open(base.work / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            name = f"slot-{number}"
            yield Slot(number, base.cache / name, base.work / name, base.output / name)
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {MAX_SLOTS} build slots in {base.work} are taken")


def link_demo(plan: Plan, slot: Slot) -> None:
    """Point the slot's `demo` at the worker's one demo dir, so slots do not each build it."""
    if not plan.demo.serve:
        return
    from eib.paths import demo_dir

    shared = demo_dir(slot.cache.parent)
    link = slot.cache / "demo"
    slot.cache.mkdir(parents=True, exist_ok=True)
    if link.resolve() == shared.resolve():
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        # A demo of the slot's own, built from another plan's cache dir: its key
        # differs from the one this plan trusts.
        from eib.execute.mounts import remove_tree

        remove_tree(link)
    shared.mkdir(parents=True, exist_ok=True)  # a dangling link would fail the demo's mkdir
    link.symlink_to(shared, target_is_directory=True)
