"""`eib publish OUTPUT_DIR`: publish an existing build again without rebuilding.

Useful after a network failure.  The plan comes from `--plan`, from
`--recipe` (compiled for the build version of the output dir, so the
publish path is the original one), or by default from the
`<outversion>.plan.json` the build saved in the output dir.
"""

from __future__ import annotations

import calendar
import logging
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from eib.commands.options import VariantArgs
from eib.commands.planfile import read_plan
from eib.errors import BuildError, Origin, UserError
from eib.model.plan import Plan

log = logging.getLogger("eib.publish")

VERSION_IN_NAME = re.compile(r"\.(\d{6}-\d{6})\.")


def saved_plan(output_dir: Path) -> Path | None:
    """The plan JSON a build saved in its output dir, if there is exactly one."""
    found = sorted(output_dir.glob("*.plan.json"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UserError(
            f"{output_dir} holds several plans ({names})", hint="choose one with --plan"
        )
    return found[0] if found else None


def build_version_of(output_dir: Path) -> str:
    """The build version of an output dir: from its saved plan, else from its file names."""
    plan_path = saved_plan(output_dir)
    if plan_path is not None:
        return read_plan(plan_path).build.build_version
    for path in sorted(output_dir.iterdir()):
        match = VERSION_IN_NAME.search(path.name)
        if match:
            return match.group(1)
    raise UserError(
        f"cannot tell the build version of {output_dir}: no plan JSON and no "
        "<product>-<branch>-<arch>-<platform>.<version>.<personality> file names",
        hint="give the build's plan with --plan",
    )


def find_plan(
    output_dir: Path, plan_file: Path | None, recipe: Path | None, variant: VariantArgs
) -> Plan:
    if plan_file is not None and recipe is not None:
        raise UserError("give either --plan or --recipe, not both")
    if plan_file is not None:
        return read_plan(plan_file)
    if recipe is not None:
        from eib.compile.compiler import compile_plan

        stamp = time.strptime(build_version_of(output_dir), "%y%m%d-%H%M%S")
        request = replace(variant.request(recipe), source_date_epoch=calendar.timegm(stamp))
        return compile_plan(request).plan
    if variant.given:
        raise UserError("variant options, --set and --localdir need --recipe")
    found = saved_plan(output_dir)
    if found is None:
        raise UserError(
            f"{output_dir} holds no <outversion>.plan.json", hint="give --plan or --recipe"
        )
    return read_plan(found)


def run_publish(
    output_dir: Path,
    *,
    plan_file: Path | None,
    recipe: Path | None,
    variant: VariantArgs,
) -> None:
    if not output_dir.is_dir():
        raise UserError("not a directory", origin=Origin(str(output_dir)))
    plan = find_plan(output_dir, plan_file, recipe, variant)
    from eib.network import NetworkLimits

    NetworkLimits.from_env()  # a bad EIB_NETWORK_* value is bad input, not a failed upload
    if not plan.publish.targets:
        raise UserError("the plan names no publish targets", key="publish.targets")

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

    from eib.publish import PublishProgress, publish_build, publish_error_log
    from eib.secrets import SecretValues, redactor, resolve_secrets, reveal_plan

    values = SecretValues(plan)
    scrub = redactor(plan, values)
    secrets = resolve_secrets(plan, values)
    plan = reveal_plan(plan, values)  # in memory only: targets may use <secret:NAME> tokens
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def show(event: PublishProgress) -> None:
            if event.target not in tasks:
                tasks[event.target] = bars.add_task(scrub(event.target), total=event.total)
            bars.update(tasks[event.target], completed=event.sent)

        try:
            report = publish_build(plan, output_dir, secrets, progress=show)
        except BuildError as failure:
            # Leave what a failed build leaves: the build log alone.
            try:
                publish_error_log(plan, output_dir, secrets)
            except BuildError as err:
                log.debug("the build log was not published either: %s", scrub(str(err)))
            raise BuildError(scrub(failure.message), stage=failure.stage,
                             step=failure.step) from None
    for target in report.targets:
        where = scrub(str(target.location))
        sys.stdout.write(f"published {len(target.files)} files to {where}\n")
