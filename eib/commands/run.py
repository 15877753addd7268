"""`eib run`: compile (or load) a plan and execute it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from eib import paths
from eib.commands.options import VariantArgs
from eib.errors import UserError
from eib.model.plan import Plan


def resolve_dirs(
    cache_dir: Path | None, work_dir: Path | None, output_dir: Path | None
) -> tuple[Path, Path, Path]:
    """The run's dirs (option, else environment, else default), checked not to nest badly."""
    cache, work = paths.cache_dir(cache_dir), paths.work_dir(work_dir)
    output = paths.output_dir(output_dir, work)
    for option, path in (("--cache-dir", cache), ("--work-dir", work), ("--output-dir", output)):
        _check_dir(path, option)
    if output != work and work.is_relative_to(output):
        raise UserError(f"the work dir {work} must not be inside the output dir {output}")
    if cache.is_relative_to(work) or work.is_relative_to(cache):
        raise UserError(f"the cache dir {cache} and the work dir {work} must not nest",
                        key="--work-dir")
    return cache, work, output


def _check_dir(path: Path, option: str) -> None:
    """A build dir is a directory or does not exist yet: refused before anything is built."""
    for candidate in (path, *path.parents):
        try:
            mode = os.stat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there yet: look at what would hold it
        except OSError:
            return  # e.g. not allowed to look: creating the dir reports that
        if not stat.S_ISDIR(mode):
            what = "exists and is not a directory" if candidate == path else "is not a directory"
            raise UserError(f"{candidate} {what}", key=option)
        return


def load_plan(
    recipe: Path | None, plan_file: Path | None, variant: VariantArgs, lock: Path | None = None
) -> Plan:
    """The plan to build: a saved one (`--plan`), or the recipe compiled for the variant."""
    if (recipe is None) == (plan_file is None):
        raise UserError("give either a RECIPE or --plan plan.json", key="eib run")
    if plan_file is not None:
        if variant.given or lock:
            raise UserError(
                "variant options, --set, --localdir and --lock need a RECIPE, not --plan"
            )
        from eib.commands.planfile import read_plan

        return read_plan(plan_file)
    from eib.compile.compiler import compile_plan

    assert recipe is not None
    plan = compile_plan(variant.request(recipe, lock)).plan
    if lock is not None:
        from eib.lock.keys import check_locked_keys

        check_locked_keys(lock, plan)
    return plan


def run_build(
    recipe: Path | None,
    variant: VariantArgs,
    *,
    plan_file: Path | None,
    dry_run: bool,
    stages: str | None,
    no_disk: bool,
    cache_dir: Path | None,
    work_dir: Path | None,
    output_dir: Path | None,
    lock_timeout: float | None,
    lock: Path | None = None,
    use_cache: bool = True,
    explain_cache: bool = False,
    secrets: list[str] | None = None,
    progress: str = "auto",
) -> None:
    from eib.execute.context import BuildDirs
    from eib.execute.progress_report import PROGRESS_MODES, select_monitor
    from eib.execute.runner import execute, parse_stages
    from eib.secrets import SecretValues, supplied_ref

    if progress not in PROGRESS_MODES:
        raise UserError(f"must be one of {', '.join(PROGRESS_MODES)}, not '{progress}'",
                        key="--progress")
    if lock_timeout is not None and lock_timeout < 0:
        raise UserError("must be 0 or more seconds", key="--lock-timeout")
    selected = parse_stages(stages)
    from eib.network import NetworkLimits

    NetworkLimits.from_env()  # a bad EIB_NETWORK_* value is bad input: refused before building
    cache, work, output = resolve_dirs(cache_dir, work_dir, output_dir)
    plan = load_plan(recipe, plan_file, variant, lock)
    supplied = {}
    for item in secrets or []:
        name, sep, source = item.partition("=")
        if not sep:  # the item may be a value typed by mistake: never echo it
            raise UserError("expected NAME=@FILE or NAME=env:VARIABLE", key="--secret")
        supplied[name] = supplied_ref(name, source)
    values = SecretValues(plan, supplied)
    monitor = select_monitor(progress)
    try:
        execute(
            plan,
            BuildDirs(cache=cache, work=work, output=output),
            stages=selected,
            dry_run=dry_run,
            assemble_disk=not no_disk,
            lock_timeout=lock_timeout,
            monitor=monitor,
            use_cache=use_cache,
            explain_cache=explain_cache,
            secrets=values,
        )
    finally:
        monitor.close()
    monitor.message(f"built {plan.outputs.outversion} in {output}")
