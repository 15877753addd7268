"""The image stage: deployment, content hooks, image hooks with the Flatpaks, disk.

Flatpak installation (`eib.flatpak.install`) and disk assembly
(`eib.execute.disk`) live in their own modules; this stage only calls them in
order, so each can be developed and tested alone.
"""

from __future__ import annotations

import functools
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
    ctx.deployment = deploy(ctx)
    # As in the legacy builder: content hooks see the deployment, and the
    # output dir starts empty for the image hooks (the build log aside).
    run_hooks(ctx, "content")
    dirs.output.mkdir(parents=True, exist_ok=True)
    legacy_outputs.empty_output_dir(dirs.output, plan.outputs.log)
    # The deployment dir is <commit>.<serial>: the commit the image holds.
    legacy_outputs.write_ostree_txt(plan, dirs.sysroot, ctx.deployment.name.split(".")[0],
                                    dirs.output)
    # At 50-flatpak.chroot's place when the hooks list it, else after them.
    install = functools.partial(_install_flatpaks, ctx) if installs_flatpaks(plan) else None
    run_hooks(ctx, "image", natives={"flatpak-install": install} if install else {})
    if install is not None and plan.native_step("flatpak-install") is None:
        install()

    if not ctx.assemble_disk:
        log.info("disk assembly skipped (--no-disk)")
        return
    ctx.step = "disk"
    ctx.monitor.step("assemble disk image")
    from eib.execute.disk import assemble_image

    assemble_image(ctx.revealed_plan(), dirs.sysroot, dirs.output, dirs.work, dirs.manifest,
                   seed=reproducible_seed(ctx), source_date_epoch=plan.source_date_epoch,
                   monitor=ctx.monitor)


def _install_flatpaks(ctx: BuildContext) -> None:
    """eib's Flatpak install into the deployment, through the stage cache when it is on."""
    from eib.flatpak.install import install_flatpaks

    plan, dirs, deployment = ctx.plan, ctx.dirs, ctx.deployment
    assert deployment is not None
    ctx.step = "flatpak"
    ctx.monitor.step("install Flatpaks")
    flatpak_dir = ctx.os_var / "lib" / "flatpak"
    with watching(ctx.monitor, "flatpak install", lambda: tree_bytes(flatpak_dir)):
        if ctx.use_cache:
            from eib.execute.stage_cache import run_cached_flatpak

            if run_cached_flatpak(ctx, lambda: install_flatpaks(
                plan, deployment, dirs.cache, dirs.manifest
            )):
                ctx.monitor.message("Flatpaks: reused from the stage cache")
        else:
            install_flatpaks(plan, deployment, dirs.cache, dirs.manifest)


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


