"""The image stage: content hooks, deployment, image hooks, Flatpaks, disk.

Flatpak installation (`eib.execute.flatpak_install`) and disk assembly
(`eib.execute.disk`) live in their own modules; this stage only calls them in
order, so each can be developed and tested alone.
"""

from __future__ import annotations

import logging

from eib.execute.context import BuildContext
from eib.execute.deploy import deploy
from eib.execute.hooks import run_hooks

log = logging.getLogger("eib.execute.image")


def run_image_stage(ctx: BuildContext, *, assemble_disk: bool = True) -> None:
    plan, dirs = ctx.plan, ctx.dirs
    run_hooks(ctx, "content")
    ctx.deployment = deploy(ctx)
    run_hooks(ctx, "image")

    remotes = [r for r in plan.flatpak.remotes.values() if r.enable and (r.apps or r.runtimes)]
    if plan.flatpak.enable and remotes:
        ctx.step = "flatpak"
        ctx.monitor.step("install Flatpaks")
        from eib.execute.flatpak_install import install_flatpaks

        install_flatpaks(plan, ctx.deployment, dirs.cache, dirs.manifest)

    if not assemble_disk:
        log.info("disk assembly skipped (--no-disk)")
        return
    ctx.step = "disk"
    ctx.monitor.step("assemble disk image")
    from eib.execute.disk import assemble_image

    assemble_image(plan, dirs.sysroot, dirs.output, dirs.work, dirs.manifest)
