"""The declarations of `eib farm worker|submit|status` (bodies in `eib.commands.farm`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eib.commands.options import JsonOpt, LockOpt, RecipeArg, VariantArgs, variant_options

farm_app = typer.Typer(
    help="Build many plans on many machines through Celery and Redis (docs/farm.md).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
BrokerOpt = Annotated[
    str,
    typer.Option("--broker", envvar="EIB_FARM_BROKER",
                 help="Redis URL: redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS)"),
]


@farm_app.command("worker")
def farm_worker(
    broker: BrokerOpt,
    queue: Annotated[
        list[str], typer.Option("--queue", "-Q", help="Queue to serve, e.g. amd64 (repeatable)")
    ],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Builds at a time")
    ] = 1,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Default /var/cache/eib-farm")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Default /var/lib/eib/farm")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", help="Default <work-dir>/out")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Worker name (default eib-QUEUES-PID@HOST)")
    ] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run a build worker in the foreground: takes tasks from its queues, builds, publishes."""
    from eib.commands.farm import run_worker

    run_worker(broker, queue, concurrency=concurrency, cache_dir=cache_dir,
               work_dir=work_dir, output_dir=output_dir, name=name, loglevel=loglevel)


@farm_app.command("submit")
@variant_options
def farm_submit(
    recipe: RecipeArg,
    broker: BrokerOpt,
    variant: VariantArgs,
    matrix: Annotated[
        list[str] | None,
        typer.Option("--matrix", help="attr=v1,v2: build the cross product (repeatable)"),
    ] = None,
    lock: LockOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the builds until they end")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds --wait waits at most")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Compile RECIPE's variants here and queue one build per plan on its arch's queue."""
    from eib.commands.farm import run_submit

    run_submit(variant.request(recipe, lock), matrix=matrix or [],
               broker=broker, wait=wait, timeout=timeout, as_json=json_)


@farm_app.command("status")
def farm_status(
    broker: BrokerOpt,
    limit: Annotated[int, typer.Option("--limit", help="Newest N builds (0: all)")] = 200,
    json_: JsonOpt = False,
) -> None:
    """Queued, running (where, which stage, since when), finished and failed builds."""
    from eib.commands.farm import run_status

    run_status(broker, as_json=json_, limit=limit)
