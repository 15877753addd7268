"""`eib lock`: pin the moving inputs of a recipe's variants in one lock file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from eib.commands.plan import matrix_variants
from eib.compile.compiler import CompileRequest, compile_plan
from eib.lock.file import (
    LockEntry,
    LockFile,
    default_lock_path,
    read_lock,
    variant_key,
    write_lock,
)
from eib.model.plan import Plan
from eib.paths import demo_dir

log = logging.getLogger("eib.lock")


@contextlib.contextmanager
def demo_served(plans: list[Plan]) -> Iterator[None]:
    """Serve the embedded demo repos while locking a recipe that builds from them."""
    demo = next((p for p in plans if p.demo.serve), None)
    if demo is None:
        yield
        return
    from eib.demo import serve
    from eib.demo.select import ensure_demo_os

    root = ensure_demo_os(demo_dir(), demo.demo.os)
    with serve(root, demo.demo.port):
        yield


def compile_variants(request: CompileRequest, matrix: list[str]) -> list[Plan]:
    """One plan per distinct resolved variant, in matrix order."""
    variants = matrix_variants(request.variant, matrix) if matrix else [request.variant]
    plans: dict[str, Plan] = {}
    for wanted in variants:
        plan = compile_plan(request.for_variant(wanted)).plan
        plans.setdefault(variant_key(plan.build.model_dump()), plan)
    return list(plans.values())


def run_lock(
    request: CompileRequest,
    *,
    matrix: list[str],
    output: Path | None,
    check: bool,
) -> None:
    from eib.lock.resolve import check_entry, lock_plan

    recipe = request.recipe
    path = output or default_lock_path(recipe)
    plans = compile_variants(request, matrix)
    if check:
        lock = read_lock(path)
        from eib.lock.file import find_entry

        entries = [(plan, find_entry(lock, path, plan.build.model_dump())) for plan in plans]
        with demo_served(plans):
            for plan, entry in entries:
                check_entry(plan, entry)
        pins = sum(1 + sum(len(r.refs) for r in e.flatpak.remotes.values()) for _, e in entries)
        sys.stdout.write(f"ok: {pins} pinned commits of {len(entries)} variant(s) in {path} "
                         "are available\n")
        return
    with demo_served(plans):
        entries_by_key: dict[str, LockEntry] = {}
        for plan in plans:
            entry = lock_plan(plan)
            entries_by_key[variant_key(entry.variant)] = entry
    lock = LockFile(recipe=recipe.name, variants=entries_by_key)
    write_lock(lock, path)
    for key, entry in sorted(entries_by_key.items()):
        refs = sum(len(r.refs) for r in entry.flatpak.remotes.values())
        sys.stdout.write(f"{key}: {entry.ostree.ref} @ {entry.ostree.commit[:12]}, "
                         f"{refs} Flatpak ref(s)\n")
    sys.stdout.write(f"wrote {path}\n")
