"""`eib farm worker|submit|status`: the glue between typer and `eib.farm`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eib.compile.compiler import CompileRequest

from pathlib import Path


def run_worker(
    broker: str,
    queues: list[str],
    *,
    concurrency: int,
    cache_dir: Path | None,
    work_dir: Path | None,
    output_dir: Path | None,
    name: str | None,
    loglevel: str,
) -> None:
    from eib.farm.worker import run_worker as start

    start(broker, queues, concurrency=concurrency, cache_dir=cache_dir, work_dir=work_dir,
          output_dir=output_dir, name=name, loglevel=loglevel)


def run_submit(
    request: CompileRequest,
    *,
    matrix: list[str],
    broker: str,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    from eib.farm.submit import run_submit as submit

    submit(request, matrix=matrix, broker=broker, wait=wait, timeout=timeout, as_json=as_json)


def run_status(broker: str, *, as_json: bool, limit: int) -> None:
    from eib.farm.status import run_status as status

    status(broker, as_json=as_json, limit=limit)
