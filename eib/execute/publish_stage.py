"""The publish stage: checksum the output dir, hand it to the publishers, then the hooks.

SHA256SUMS (signed when a key is set) is written even when nothing is
uploaded (a dry run, no targets): the output dir is a build's whole set of
files, as the legacy builder left it.
"""

from __future__ import annotations

import logging

from eib.execute.context import BuildContext
from eib.execute.hooks import run_hooks

log = logging.getLogger("eib.execute.publish")


def run_publish_stage(ctx: BuildContext) -> None:
    targets = ctx.plan.publish.targets
    if ctx.dry_run or not targets:
        from eib.publish.publisher import write_build_sums

        ctx.step = "checksums"
        ctx.monitor.step("SHA256SUMS")
        write_build_sums(ctx.revealed_plan(), ctx.dirs.output)
    if ctx.dry_run:
        ctx.monitor.message("publish skipped (dry run)")
        log.info("dry run: not publishing")
        return
    if targets:
        ctx.step = "publish"
        ctx.monitor.step(f"publish to {len(targets)} target(s)")
        from eib.publish import publish_build
        from eib.secrets import resolve_secrets

        publish_build(ctx.revealed_plan(), ctx.dirs.output,
                      resolve_secrets(ctx.plan, ctx.secrets), state_dir=ctx.dirs.cache)
    run_hooks(ctx, "publish")
