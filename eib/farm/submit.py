"""`eib farm submit`: compile every plan here, queue one task per plan, maybe wait.

Compiling first means a bad recipe fails before anything is queued.  Each
task goes to the queue named by the plan's architecture, so arm64 plans only
reach arm64 workers.  Two variants that compile to the same plan (same
digest) are sent once.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import TYPE_CHECKING

from eib.errors import EibError
from eib.farm.results import FINISHED_OK, TaskView, view
from eib.farm.settings import TASK_NAME, make_app, redact

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

    from eib.compile.compiler import CompileRequest
    from eib.farm.registry import Submitted
    from eib.model.plan import Plan

POLL_SECONDS = 1.0


class FarmError(EibError):
    """The broker cannot be reached, or the builds did not all succeed: exit 1."""

    exit_code = 1


def connect_checked(broker: str) -> tuple[Celery, Redis]:
    from redis.exceptions import RedisError

    from eib.farm.registry import connect

    app = make_app(broker)
    client = connect(broker)
    try:
        client.ping()
    except RedisError as err:
        raise FarmError(f"cannot reach the broker at {redact(broker)}: {err}") from None
    return app, client


def run_submit(
    request: CompileRequest,
    *,
    matrix: list[str],
    broker: str,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    from eib.farm.marker import require_markable
    from eib.farm.plans import compile_plans
    from eib.farm.settings import check_broker

    check_broker(broker)
    if timeout is not None and timeout <= 0:
        from eib.errors import UserError

        raise UserError("must be more than 0 seconds", key="--timeout")
    plans = compile_plans(request, matrix)
    for plan in plans:
        require_markable(plan)
    unique = list({p.digest: p for p in plans}.values())
    app, client = connect_checked(broker)
    entries = send(app, client, unique)
    if not wait:
        if as_json:
            from dataclasses import asdict

            sys.stdout.write(json.dumps([asdict(e) for e in entries], indent=2) + "\n")
        else:
            for e in entries:
                sys.stdout.write(f"{e.task_id}  {e.variant}  queue {e.queue}\n")
        return
    if not as_json:
        sys.stdout.write(f"submitted {len(entries)} build(s) to {redact(broker)}\n")
    views = follow(app, client, entries, timeout, live=not as_json)
    report(views, as_json=as_json, timed_out=not all(v.done for v in views))


def send(app: Celery, client: Redis, plans: list[Plan]) -> list[Submitted]:
    from eib.farm.plans import variant_label
    from eib.farm.registry import Submitted, record

    now = time.time()
    entries = [
        Submitted(task_id=str(uuid.uuid4()), variant=variant_label(p),
                  outversion=p.outputs.outversion, digest=p.digest, queue=p.build.arch,
                  submitted=now)
        for p in plans
    ]
    record(client, entries)  # before sending, so `status` never misses a task
    for entry, plan in zip(entries, plans, strict=True):
        app.send_task(TASK_NAME, args=[plan.to_json()], queue=entry.queue,
                      task_id=entry.task_id)
    return entries


def follow(
    app: Celery, client: Redis, entries: list[Submitted], timeout: float | None, *, live: bool
) -> list[TaskView]:
    """Poll until every task is done or `timeout` passes; show a live table to people."""
    deadline = None if timeout is None else time.monotonic() + timeout
    views = [view(app, client, e) for e in entries]
    if live and sys.stdout.isatty():
        from rich.live import Live

        from eib.farm.table import task_table

        with Live(task_table(views), refresh_per_second=2) as screen:
            while not _finished(views, deadline):
                time.sleep(POLL_SECONDS)
                views = [view(app, client, e) for e in entries]
                screen.update(task_table(views))
        return views
    from eib.farm.table import plain_line

    shown: dict[str, str] = {}
    while True:
        for v in views:
            line = f"{v.status} {v.worker} {v.stage}"
            if live and shown.get(v.task_id) != line:
                shown[v.task_id] = line
                sys.stdout.write(time.strftime("%H:%M:%S ") + plain_line(v) + "\n")
                sys.stdout.flush()
        if _finished(views, deadline):
            return views
        time.sleep(POLL_SECONDS)
        views = [view(app, client, e) for e in entries]


def _finished(views: list[TaskView], deadline: float | None) -> bool:
    if all(v.done for v in views):
        return True
    return deadline is not None and time.monotonic() >= deadline


def report(views: list[TaskView], *, as_json: bool, timed_out: bool) -> None:
    ok = [v for v in views if v.status in FINISHED_OK]
    failed = [v for v in views if v.status == "failed"]
    pending = [v for v in views if not v.done]
    if as_json:
        sys.stdout.write(json.dumps([v.to_json() for v in views], indent=2, sort_keys=True)
                         + "\n")
    else:
        from rich.console import Console

        from eib.farm.table import task_table

        console = Console(soft_wrap=False, width=max(100, Console().width))
        console.print(task_table(views, title="farm builds"))
        for v in failed:
            console.print(f"\n{v.variant} failed on {v.worker or '?'}: {v.error}", markup=False)
            for line in v.result.get("log_tail", [])[-10:]:
                console.print(f"  | {line}", markup=False, highlight=False)
        built = sum(v.status == "built" for v in ok)
        console.print(
            f"\n{len(ok)} of {len(views)} built ({built} now, {len(ok) - built} already), "
            f"{len(failed)} failed, {len(pending)} unfinished", markup=False)
    if failed or pending:
        why = [f"{len(failed)} failed"] if failed else []
        if pending:
            why.append(f"{len(pending)} unfinished" + (" (timed out)" if timed_out else ""))
        raise FarmError("not every variant was built: " + ", ".join(why))
