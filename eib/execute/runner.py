"""The executor's entry point: lock, prepare, run the stages, or fail cleanly.

Lifecycle per build (the debos idea: run, then always clean up):
lock the cache → reset the work dir → open `build.txt` → serve the demo if
asked → ostree → image → manifest → (save config + plan) → publish; on any
failure the error stage runs and the BuildError is re-raised with the
failing stage and step filled in.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from eib import __version__
from eib.errors import BuildError, UserError
from eib.execute import legacy_outputs, staging
from eib.execute.buildroot import release_work_dir
from eib.execute.cache.bound import keep_bounded
from eib.execute.cache.bound import max_size as max_cache_size
from eib.execute.cache.store import reclaim_temporaries
from eib.execute.context import BuildContext, BuildDirs
from eib.execute.diskfull import is_disk_full, no_space
from eib.execute.error_stage import run_error_stage
from eib.execute.exclusive import cache_lock, dir_lock
from eib.execute.hooks import plan_env
from eib.execute.logs import build_log
from eib.execute.mounts import cleanup_work_dir, remove_tree
from eib.execute.progress import Monitor, NullMonitor
from eib.execute.reclaim import owned_build, reclaim_stale_builds
from eib.execute.safedirs import MARKER, claim_work_dir, ensure_private_dir
from eib.execute.scratch import build_temp_dir
from eib.execute.stages import BUILD_STAGES, CACHED_STAGES, spec
from eib.interrupt import Interrupted, interruptible, where
from eib.model.plan import REDACTED, Plan
from eib.model.recipe import HOOK_GROUPS
from eib.paths import demo_dir

log = logging.getLogger("eib.execute")


def parse_stages(text: str | None) -> tuple[str, ...]:
    """`--stages a,b` → the stages to run, in build order; bad names are a UserError."""
    if not text:
        return BUILD_STAGES
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    for name in wanted:
        if name not in BUILD_STAGES:
            from eib.errors import did_you_mean

            raise UserError(
                f"unknown stage '{name}' (stages: {', '.join(BUILD_STAGES)})",
                key="--stages",
                hint=did_you_mean(name, BUILD_STAGES),
            )
    return tuple(s for s in BUILD_STAGES if s in wanted)


def public_config(plan: Plan) -> dict[str, Any]:
    """The plan's resolved sections for `<outversion>.config.yaml`, private values redacted."""
    from eib.envnames import env_name

    data: dict[str, Any] = plan.model_dump(
        mode="json", include={"build", "ostree", "image", "flatpak", "publish", "demo"}
    )
    data["hooks"] = {g: [h.name for h in plan.hooks_of(g)] for g in HOOK_GROUPS}
    data["secrets"] = {ref.name: REDACTED for ref in plan.secrets}
    extra: dict[str, dict[str, Any]] = {}
    for section, options in plan.extra.items():
        extra[section] = {
            key: REDACTED if plan.env.get(env_name(section, key)) == REDACTED else value
            for key, value in options.items()
        }
    data["extra"] = extra
    return data


def save_plan_outputs(plan: Plan, output: Path) -> None:
    config = yaml.safe_dump(public_config(plan), sort_keys=True, allow_unicode=True)
    (output / plan.outputs.config).write_text(config)
    (output / plan.outputs.plan).write_text(plan.to_json())
    legacy_outputs.write_config_ini(plan, output)


def prepare_dirs(dirs: BuildDirs) -> None:
    """Claim the work dir and check the output dir (bad ones are a UserError, exit 2).

    The output dir is never emptied here: a new build replaces the previous
    one only once it is complete (`eib.execute.staging`).
    """
    claim_work_dir(dirs.work)
    if not dirs.output.is_relative_to(dirs.work):
        ensure_private_dir(dirs.output, key="--output-dir")


def reset_dirs(dirs: BuildDirs, reset: bool, log_name: str) -> None:
    """With the locks held: clean what earlier (maybe killed) builds left, then make dirs.

    A build that runs the image stage starts from scratch; `--stages
    manifest,publish` after `--stages ostree,image` continues the same build.
    """
    cleanup_work_dir(dirs.work)
    if reset:
        _empty_work(dirs)
    dirs.output.mkdir(parents=True, exist_ok=True)
    staging.reclaim(dirs.output)
    if reset:
        staging.check_output_dir(dirs.output, log_name)
    for path in (dirs.tmp, dirs.manifest, dirs.content):
        path.mkdir(parents=True, exist_ok=True)


def _empty_work(dirs: BuildDirs) -> None:
    for child in dirs.work.iterdir():
        if dirs.output.is_relative_to(child) or child.name == MARKER:
            continue
        if child.is_dir() and not child.is_symlink():
            remove_tree(child)
        else:
            child.unlink()


@contextlib.contextmanager
def build_locks(dirs: BuildDirs, timeout: float | None, monitor: Monitor) -> Iterator[None]:
    """The cache, work and output dirs, locked in that order (so two builds never deadlock)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(cache_lock(dirs.cache, timeout, on_wait=monitor.message))
        prepare_dirs(dirs)
        stack.enter_context(dir_lock(dirs.work, "work dir", "--work-dir", timeout,
                                     on_wait=monitor.message))
        if dirs.output != dirs.work:
            dirs.output.mkdir(parents=True, exist_ok=True)
            stack.enter_context(dir_lock(dirs.output, "output dir", "--output-dir", timeout,
                                         on_wait=monitor.message))
        yield


@contextlib.contextmanager
def demo_server(ctx: BuildContext) -> Iterator[None]:
    """Serve the embedded demo OS for the build when the plan asks for it."""
    if not ctx.plan.demo.serve:
        yield
        return
    from eib.demo.select import ensure_demo_os
    from eib.execute.demo_share import shared_serve

    ctx.stage, ctx.step = "ostree", "demo"
    ctx.monitor.message(f"preparing the {ctx.plan.demo.os} demo OS (cached after the first build)")
    root = ensure_demo_os(demo_dir(ctx.dirs.cache), ctx.plan.demo.os)
    # The port is in the plan (and the image): builds on one host share one server.
    with shared_serve(root, ctx.plan.demo.port) as url:
        log.info("serving the demo OS from %s at %s", root, url)
        yield


@contextlib.contextmanager
def terminate_as_error() -> Iterator[None]:
    """Make SIGTERM and SIGINT raise `Interrupted`, so a stopped build still cleans up.

    `Interrupted` is no BuildError: no retry loop mistakes it for a network
    failure, and the build stops at once (see `eib.interrupt`).
    """
    with interruptible():
        yield


def _run_stages(
    ctx: BuildContext,
    stages: Sequence[str],
    assemble_disk: bool,
    use_cache: bool = True,
    explain_cache: bool = False,
) -> None:
    from eib.execute.stage_cache import explain_stage, run_cached

    planned: set[str] = {s.name for s in ctx.plan.stages} or set(BUILD_STAGES)
    # A partial run (`--stages`) or one without a disk image is not a whole
    # stage result: it is neither stored nor served from the cache.
    caching = use_cache and assemble_disk and tuple(stages) == BUILD_STAGES
    ctx.use_cache = caching
    for name in stages:
        if name not in planned:
            continue
        if name == "publish":
            save_plan_outputs(ctx.plan, ctx.dirs.output)
        ctx.stage, ctx.step = name, ""
        if explain_cache:
            reason = explain_stage(ctx, name)
            log.info("cache: %s", reason)
            ctx.monitor.message(f"cache: {reason}")
        ctx.monitor.stage(name)
        log.info("=== stage %s", name)
        started = time.monotonic()
        run_stage = spec(name).run_function()
        if caching and name in CACHED_STAGES:
            if run_cached(ctx, name, lambda fn=run_stage: fn(ctx)):  # type: ignore[misc]
                ctx.monitor.message(f"{name}: reused from the stage cache")
        else:
            run_stage(ctx)
        ctx.monitor.stage_done(name, time.monotonic() - started)
    if "publish" not in stages or "publish" not in planned:
        save_plan_outputs(ctx.plan, ctx.dirs.output)


def execute(
    plan: Plan,
    dirs: BuildDirs,
    *,
    stages: Sequence[str] = BUILD_STAGES,
    dry_run: bool = False,
    assemble_disk: bool = True,
    lock_timeout: float | None = None,
    monitor: Monitor | None = None,
    use_cache: bool = True,
    explain_cache: bool = False,
    secrets: Any = None,
) -> BuildContext:
    """Build `plan`; raise BuildError (after the error stage) when a step fails.

    A build that runs the image stage writes into a staging dir and replaces
    the output dir's previous build only when it succeeded; a run continuing
    an earlier one (`--stages manifest,publish`) adds to the output dir in
    place and marks it `FAILED` when it fails.
    """
    monitor = monitor or NullMonitor()
    from eib.secrets import SecretValues, redactor

    values = secrets if secrets is not None else SecretValues(plan)
    cache_limit = max_cache_size(dirs.cache) if use_cache else None
    scrub = redactor(plan, values)
    reset = "image" in stages
    log_name = plan.outputs.log
    with build_locks(dirs, lock_timeout, monitor):
        reclaim_stale_builds(skip=dirs.work)
        reclaim_temporaries(dirs.cache)
        reset_dirs(dirs, reset, log_name)
        target = staging.begin(dirs.output) if reset else dirs.output
        ctx = BuildContext(plan=plan, dirs=replace(dirs, output=target), monitor=monitor,
                           dry_run=dry_run, assemble_disk=assemble_disk, secrets=values)
        with owned_build(dirs.work), build_temp_dir(), build_log(target / log_name, scrub):
            log.info("eib %s: building %s (plan %s)", __version__, plan.outputs.outversion,
                     plan.digest)
            log.info("cache %s, work %s, output %s", dirs.cache, dirs.work, dirs.output)
            for warning in plan.warnings:
                log.warning("warning: %s", warning)
                monitor.message(f"warning: {warning}")
            ctx.env = plan_env(plan, values)
            try:
                _build(ctx, stages, assemble_disk, use_cache, explain_cache, scrub)
            except BaseException as err:
                _settle_failure(ctx, dirs.output, reset, err)
                raise
            finally:
                _after(ctx, cache_limit)
            if reset:
                staging.replace_outputs(target, dirs.output, log_name)
            else:
                staging.clear_marker(dirs.output)
            log.info("build finished: %s", dirs.output)
    return ctx


def _build(
    ctx: BuildContext,
    stages: Sequence[str],
    assemble_disk: bool,
    use_cache: bool,
    explain_cache: bool,
    scrub: Any,
) -> None:
    """The stages, then the error stage on a failure, re-raised with stage and step."""
    try:
        try:
            with terminate_as_error(), demo_server(ctx):
                _run_stages(ctx, stages, assemble_disk, use_cache, explain_cache)
        except OSError as err:
            if not is_disk_full(err):
                raise
            full = Path(err.filename) if err.filename else ctx.dirs.output
            raise no_space(full) from err
    except BuildError as err:
        failure = BuildError(
            scrub(err.message),
            stage=err.stage or ctx.stage or None,
            step=err.step or (ctx.step if err.stage in (None, ctx.stage) else None),
        )
        _discard(ctx, failure)
        run_error_stage(ctx, failure)
        raise failure from err
    except BaseException as err:
        if isinstance(err, Interrupted):
            err.located(where(ctx.stage, ctx.step))
        failure = BuildError(f"{type(err).__name__}: {err}", stage=ctx.stage, step=ctx.step)
        _discard(ctx, failure)
        run_error_stage(ctx, failure)
        raise


def _discard(ctx: BuildContext, failure: BuildError) -> None:
    """A failed build's image set goes before the error hooks run: none of it is to be used."""
    where = "/".join(p for p in (failure.stage, failure.step) if p)
    message = f"{where}: {failure.message}" if where else failure.message
    try:
        if ctx.dirs.output.name.startswith(staging.STAGING_PREFIX):
            staging.discard_outputs(ctx.dirs.output, ctx.plan.outputs.log, message)
        else:
            staging.write_marker(ctx.dirs.output, f"this build failed: {message}")
    except Exception:
        log.exception("marking the failed build's outputs")


def _settle_failure(ctx: BuildContext, output: Path, reset: bool, err: BaseException) -> None:
    """Leave the failed build's log (and error hooks' files) where the user looks."""
    if not reset:
        return
    try:
        where = staging.settle_failed(ctx.dirs.output, output, ctx.plan.outputs.log)
    except Exception:
        log.exception("keeping the failed build's log")
        return
    if where != output:
        ctx.monitor.message(f"the previous build in {output} is kept; "
                            f"this build's log is in {where}")


def _after(ctx: BuildContext, cache_limit: int | None) -> None:
    """Cleanup that must never hide the build's own error: failures are only logged."""
    release_work_dir(ctx)
    if cache_limit is None:
        return
    try:
        evicted, size = keep_bounded(ctx.dirs.cache, cache_limit)
        log.info("stage cache: %d bytes (limit %d), %d entries evicted", size, cache_limit,
                 len(evicted))
    except Exception:
        log.exception("bounding the stage cache")
