"""Running stages through the stage cache (`eib.execute.cache`).

The ostree stage always resolves the ref (a pull of an unchanged ref fetches
nothing), except when the plan pins a commit already in the cache repo.  The
image and manifest stages are looked up by the sha256 of their inputs, which
chain through the previous stage's key: an unchanged key restores the
stored outputs instead of rebuilding; a changed one re-runs that stage and
everything after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eib.execute import cache
from eib.execute.context import BuildContext
from eib.execute.stages import CACHED_STAGES, spec

log = logging.getLogger("eib.execute.cache")


def _commit_in_repo(ctx: BuildContext, commit: str) -> bool:
    """The commit object is in the cache repo (prune or a cleared cache may remove it)."""
    if len(commit) != 64:
        return False
    return (ctx.dirs.ostree_repo / "objects" / commit[:2] / f"{commit[2:]}.commit").is_file()


def _snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Top-level entries of `directory` → (inode, size, mtime): what a stage changed."""
    found = {}
    for path in directory.iterdir():
        st = path.lstat()
        found[path.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def runtime_inputs(ctx: BuildContext) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if ctx.commit:
        inputs["commit"] = ctx.commit
    return inputs


def explain_stage(ctx: BuildContext, stage: str) -> str:
    if stage == "ostree" and not ctx.plan.ostree.commit:
        return f"ostree: runs (resolves {ctx.plan.ostree.ref}; an unchanged ref pulls nothing)"
    if stage not in CACHED_STAGES:
        return f"{stage}: not cached (always runs)"
    return cache.explain(ctx.plan, stage, _with_previous(ctx, stage), cache_dir=ctx.dirs.cache)


def _with_previous(ctx: BuildContext, stage: str) -> dict[str, Any]:
    inputs = runtime_inputs(ctx)
    previous = spec(stage).previous
    if previous and previous in ctx.cache_keys:
        inputs["previous"] = ctx.cache_keys[previous]
    return inputs


def run_cached_flatpak(ctx: BuildContext, install: Callable[[], object]) -> bool:
    """The Flatpak installation through the cache: it depends on the remotes, refs and
    pins only, so a changed image hook restores it instead of installing again."""
    from eib.flatpak.install import MANIFEST_FRAGMENT, system_installation

    assert ctx.deployment is not None
    outputs = {
        "lib-flatpak": system_installation(ctx.deployment),
        MANIFEST_FRAGMENT: ctx.dirs.manifest / MANIFEST_FRAGMENT,
    }
    key, hit = cache.cached_stage(
        ctx.dirs.cache, ctx.plan, "flatpak", runtime_inputs(ctx), outputs, install
    )
    ctx.cache_keys["flatpak"] = key
    log.info("stage cache: flatpak %s (%s)", "hit" if hit else "miss, stored", key[:12])
    return hit


def run_cached(ctx: BuildContext, stage: str, run_stage: Callable[[], object]) -> bool:
    """Run `stage` through the cache; True when its result came from the cache."""
    dirs, plan = ctx.dirs, ctx.plan
    if stage == "ostree":
        pinned = plan.ostree.commit
        if pinned and _commit_in_repo(ctx, pinned):
            key, hit = cache.cached_stage(
                dirs.cache, plan, "ostree", {"commit": pinned},
                {"ostree.json": dirs.manifest / "ostree.json"}, run_stage,
                still_valid=lambda entry: _commit_in_repo(ctx, pinned),
            )
            ctx.commit = ctx.commit or pinned
        else:
            run_stage()
            key, data = cache.stage_key(plan, "ostree", {"commit": ctx.commit})
            if cache.lookup(dirs.cache, "ostree", key) is None:
                cache.store(dirs.cache, "ostree", key, data,
                            {"ostree.json": dirs.manifest / "ostree.json"})
            hit = False
        ctx.cache_keys["ostree"] = key
        return hit
    outputs = {"out": dirs.output, "manifest": dirs.manifest}
    # Only what this stage adds to the output dir is its result: the image
    # stage's files (the compressed image) are in the image stage's entry
    # already, and a hit of this stage implies one of that stage.
    before = _snapshot(dirs.output)
    skip = [plan.outputs.log]

    def run_and_compare() -> None:
        run_stage()
        after = _snapshot(dirs.output)
        skip.extend(name for name, sig in after.items() if before.get(name) == sig)

    key, hit = cache.cached_stage(
        dirs.cache, plan, stage, _with_previous(ctx, stage), outputs, run_and_compare,
        skip=skip,
    )
    ctx.cache_keys[stage] = key
    log.info("stage cache: %s %s (%s)", stage, "hit" if hit else "miss, stored", key[:12])
    return hit
