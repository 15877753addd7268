"""The publish stage: SHA256SUMS, the publishers and the publish hooks, in the legacy order.

SHA256SUMS (signed when a key is set) is written even when nothing is
uploaded (a dry run, no targets): the output dir is a build's whole set of
files, as the legacy builder left it.  Targets whose legacy hook is listed
(`45-publish-s3`, `50-publish`) are published at that hook's place, so the
hooks before it (`40-build-log`, `42-sha256sums`) add their files first;
the others are published before the hooks, as a YAML recipe expects.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from eib.execute.context import BuildContext
from eib.execute.hooks import run_hooks
from eib.execute.stages import PUBLISH_NATIVES, publish_at, publish_first
from eib.model.plan import NativeStep
from eib.model.recipe import PublishTarget

log = logging.getLogger("eib.execute.publish")


def run_publish_stage(ctx: BuildContext) -> None:
    if ctx.dry_run:
        _write_sums(ctx)
        ctx.monitor.message("publish skipped (dry run)")
        log.info("dry run: not publishing")
        return
    first = publish_first(ctx.plan)
    if first:
        _publish(ctx, first)
    elif ctx.plan.native_step("checksums") is None:
        _write_sums(ctx)
    natives: dict[NativeStep, Callable[[], object]] = {
        "checksums": functools.partial(_write_sums, ctx)
    }
    for native in PUBLISH_NATIVES:
        targets = publish_at(ctx.plan, native)
        if targets:
            natives[native] = functools.partial(_publish, ctx, targets)
    run_hooks(ctx, "publish", natives=natives)


def _write_sums(ctx: BuildContext) -> None:
    from eib.publish.publisher import write_build_sums

    ctx.step = "checksums"
    ctx.monitor.step("SHA256SUMS")
    write_build_sums(ctx.revealed_plan(), ctx.dirs.output)


def _publish(ctx: BuildContext, targets: list[PublishTarget]) -> None:
    """Publish the output dir as it is now (SHA256SUMS rewritten over it) to `targets`."""
    from eib.publish import publish_build
    from eib.secrets import resolve_secrets

    ctx.step = "publish"
    ctx.monitor.step(f"publish to {len(targets)} target(s)")
    plan = ctx.revealed_plan()
    plan = plan.model_copy(update={"publish": plan.publish.model_copy(
        update={"targets": targets})})
    publish_build(plan, ctx.dirs.output, resolve_secrets(ctx.plan, ctx.secrets),
                  state_dir=ctx.dirs.cache)
