"""The publish stage: hand the output dir to the publishers, then the hooks."""

from __future__ import annotations

import logging

from eib.execute.context import BuildContext
from eib.execute.hooks import run_hooks

log = logging.getLogger("eib.execute.publish")


def run_publish_stage(ctx: BuildContext) -> None:
    if ctx.dry_run:
        ctx.monitor.message("publish skipped (dry run)")
        log.info("dry run: not publishing")
        return
    if ctx.plan.publish.targets:
        ctx.step = "publish"
        ctx.monitor.step(f"publish to {len(ctx.plan.publish.targets)} target(s)")
        from eib.publish import publish_build
        from eib.secrets import resolve_secrets

        publish_build(ctx.revealed_plan(), ctx.dirs.output,
                      resolve_secrets(ctx.plan, ctx.secrets), state_dir=ctx.dirs.cache)
    run_hooks(ctx, "publish")
