"""The image stage: content hooks, deployment, image hooks, Flatpaks, disk.

Flatpak installation (`eib.flatpak.install`) and disk assembly
(`eib.execute.disk`) live in their own modules; this stage only calls them in
order, so each can be developed and tested alone.
"""

from __future__ import annotations

import hashlib
import json
import logging

from eib.execute import legacy_outputs
from eib.execute.context import BuildContext
from eib.execute.deploy import deploy
from eib.execute.hooks import run_hooks
from eib.execute.progress_report import tree_bytes, watching
from eib.execute.stages import installs_flatpaks

log = logging.getLogger("eib.execute.image")


def run_image_stage(ctx: BuildContext) -> None:
    plan, dirs = ctx.plan, ctx.dirs
    run_hooks(ctx, "content")
    ctx.deployment = deploy(ctx)
    # The deployment dir is <commit>.<serial>: the commit the image holds.
    legacy_outputs.write_ostree_txt(plan, dirs.sysroot, ctx.deployment.name.split(".")[0],
                                    dirs.output)
    run_hooks(ctx, "image")

    if installs_flatpaks(plan):
        ctx.step = "flatpak"
        ctx.monitor.step("install Flatpaks")
        from eib.flatpak.install import install_flatpaks

        deployment = ctx.deployment
        flatpak_dir = ctx.os_var / "lib" / "flatpak"
        if ctx.use_cache:
            from eib.execute.stage_cache import run_cached_flatpak

            with watching(ctx.monitor, "flatpak install", lambda: tree_bytes(flatpak_dir)):
                if run_cached_flatpak(ctx, lambda: install_flatpaks(
                    plan, deployment, dirs.cache, dirs.manifest
                )):
                    ctx.monitor.message("Flatpaks: reused from the stage cache")
        else:
            with watching(ctx.monitor, "flatpak install", lambda: tree_bytes(flatpak_dir)):
                install_flatpaks(plan, deployment, dirs.cache, dirs.manifest)

    if not ctx.assemble_disk:
        log.info("disk assembly skipped (--no-disk)")
        return
    ctx.step = "disk"
    ctx.monitor.step("assemble disk image")
    from eib.execute.disk import assemble_image

    assemble_image(ctx.revealed_plan(), dirs.sysroot, dirs.output, dirs.work, dirs.manifest,
                   seed=reproducible_seed(ctx), source_date_epoch=plan.source_date_epoch,
                   monitor=ctx.monitor)


def reproducible_seed(ctx: BuildContext) -> str:
    """Where the image's UUIDs, volume ids and hash seeds come from.

    The same inputs (commit, outputs' names, image and Flatpak sections) give
    the same seed whatever the cache, work or output dirs, so two builds of
    one locked plan write identical file systems.
    """
    plan = ctx.plan
    data = {
        "commit": ctx.commit,
        "outversion": plan.outputs.outversion,
        "image": plan.image.model_dump(mode="json"),
        "flatpak": plan.flatpak.model_dump(mode="json"),
        "hooks": [h.sha256 for h in plan.hooks],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


