"""The error stage: after any failure, report, clean up, and keep the log.

Everything here is best effort and never raises: the build has already
failed, and the user must see that failure, not a secondary one.
"""

from __future__ import annotations

import logging

from eib.errors import BuildError, EibError
from eib.execute.buildroot import release_work_dir
from eib.execute.context import BuildContext
from eib.execute.hooks import run_hooks

log = logging.getLogger("eib.execute.error")


def run_error_stage(ctx: BuildContext, failure: BuildError) -> None:
    log.error("build failed in %s/%s: %s", failure.stage, failure.step, failure.message)
    ctx.stage, ctx.step = "error", ""
    ctx.monitor.stage("error")
    try:
        run_hooks(ctx, "error", keep_going=True)
    except Exception:
        log.exception("error hooks")
    release_work_dir(ctx)
    if ctx.dry_run or not ctx.plan.publish.targets:
        return
    try:
        from eib.publish import publish_error_log
        from eib.secrets import resolve_secrets

        secrets = resolve_secrets(ctx.plan, ctx.secrets)
        publish_error_log(ctx.revealed_plan(), ctx.dirs.output, secrets,
                          state_dir=ctx.dirs.cache)
    except EibError as err:
        log.error("publishing the build log failed: %s", err)
    except Exception:
        log.exception("publishing the build log")
