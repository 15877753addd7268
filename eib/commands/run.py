"""`eib run`: compile (or load) a plan and execute it."""

from __future__ import annotations

import os
from pathlib import Path

from eib import paths
from eib.errors import UserError
from eib.model.plan import Plan

DEFAULT_CACHE_DIR = Path(paths.DEFAULT_CACHE_DIR)
DEFAULT_WORK_DIR = Path(paths.DEFAULT_WORK_DIR)
DEFAULT_OUTPUT_DIR = Path(paths.DEFAULT_OUTPUT_DIR)


def resolve_dirs(
    cache_dir: Path | None, work_dir: Path | None, output_dir: Path | None
) -> tuple[Path, Path, Path]:
    """Option, else environment (EIB_CACHE_DIR, EIB_WORK_DIR, EIB_OUTPUT_DIR), else default.

    The output dir defaults to `<work>/out` for a work dir given by the
    user, and to `/var/lib/eib/out` beside the default work dir.
    """
    env = os.environ
    cache = cache_dir or Path(env.get("EIB_CACHE_DIR") or DEFAULT_CACHE_DIR)
    given_work = work_dir or (Path(env["EIB_WORK_DIR"]) if env.get("EIB_WORK_DIR") else None)
    work = given_work or DEFAULT_WORK_DIR
    output = output_dir or (Path(env["EIB_OUTPUT_DIR"]) if env.get("EIB_OUTPUT_DIR") else None)
    cache, work = cache.absolute(), work.absolute()
    if output is None:
        output = work / "out" if given_work else DEFAULT_OUTPUT_DIR
    output = output.absolute()
    if output != work and work.is_relative_to(output):
        raise UserError(f"the work dir {work} must not be inside the output dir {output}")
    if cache.is_relative_to(work) or work.is_relative_to(cache):
        raise UserError(f"the cache dir {cache} and the work dir {work} must not nest",
                        key="--work-dir")
    return cache, work, output


def load_plan(
    recipe: Path | None,
    plan_file: Path | None,
    variant: dict[str, str],
    sets: list[str],
    localdir: Path | None,
    cache: Path,
    lock: Path | None = None,
) -> Plan:
    if (recipe is None) == (plan_file is None):
        raise UserError("give either a RECIPE or --plan plan.json", key="eib run")
    if plan_file is not None:
        if variant or sets or localdir or lock:
            raise UserError(
                "variant options, --set, --localdir and --lock need a RECIPE, not --plan"
            )
        from pydantic import ValidationError

        from eib.model.plan import load_plan_json

        try:
            return load_plan_json(plan_file.read_text())
        except OSError as err:
            raise UserError(f"cannot read plan: {err.strerror}", key=str(plan_file)) from None
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UserError(f"not a valid plan: {where}: {first['msg']}",
                            key=str(plan_file)) from None
    from eib.compile import compile_recipe

    assert recipe is not None
    build_version = None
    if lock is not None:
        from eib.lockfile import locked_inputs

        pins, build_version = locked_inputs(lock, recipe, variant, sets=sets, localdir=localdir)
        sets = [*sets, *pins]
    plan = compile_recipe(
        recipe, variant, sets, localdir, cachedir=str(cache), build_version=build_version
    ).plan
    if lock is not None:
        from eib.lock_keys import check_locked_keys

        check_locked_keys(lock, plan)
    return plan


def run_build(
    recipe: Path | None,
    variant: dict[str, str],
    *,
    plan_file: Path | None,
    sets: list[str],
    localdir: Path | None,
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
) -> None:
    from eib.execute.context import BuildDirs
    from eib.execute.progress import default_monitor
    from eib.execute.runner import execute, parse_stages

    if lock_timeout is not None and lock_timeout < 0:
        raise UserError("must be 0 or more seconds", key="--lock-timeout")
    selected = parse_stages(stages)
    cache, work, output = resolve_dirs(cache_dir, work_dir, output_dir)
    plan = load_plan(recipe, plan_file, variant, sets, localdir, cache, lock)
    monitor = default_monitor()
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
        )
    finally:
        monitor.close()
    monitor.message(f"built {plan.outputs.outversion} in {output}")
