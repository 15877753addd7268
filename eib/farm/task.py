"""The build task: plan JSON in, result (status, worker, timings, outputs, log tail) out.

At-least-once delivery is made exactly-once publishing here: the marker says
whether this digest is already published; the digest lock keeps a second
worker with the same plan from building it at the same time (that task
retries later and then finds the marker).  The result lives in Celery's
result backend: the return value when the build is built or already built,
a `BuildFailed` carrying the same fields when it failed.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from eib import __version__
from eib.farm.settings import TASK_NAME, Tunables

if TYPE_CHECKING:
    from celery import Celery, Task

    from eib.farm.digestlock import DigestLock
    from eib.model.plan import Plan

log = logging.getLogger("eib.farm.task")

BUILT = "built"
ALREADY_BUILT = "already-built"
FAILED = "failed"


class BuildFailed(Exception):
    """A build that ran and failed; its one argument is the result dict."""

    @property
    def result(self) -> dict[str, Any]:
        value = self.args[0] if self.args else {}
        return value if isinstance(value, dict) else {"status": FAILED, "error": str(value)}


class SamePlanBuilding(Exception):
    """Another worker holds the digest lock; the task is retried later."""


@dataclass(frozen=True)
class WorkerSetup:
    """What the worker command was given; read by the task in the pool processes."""

    broker: str
    base: Any  # eib.farm.slots.BaseDirs
    tunables: Tunables


SETUP: WorkerSetup | None = None


def register(app: Celery) -> Task:
    """Register the build task on `app` (the worker's)."""
    return app.task(
        name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True,
        max_retries=None,
    )(build_task)


def build_task(self: Task, plan_json: str) -> dict[str, Any]:
    from eib.model.plan import load_plan_json

    if SETUP is None:
        raise RuntimeError("the build task runs only in `eib farm worker`")
    started = time.time()
    worker = str(self.request.hostname or socket.gethostname())
    plan = load_plan_json(plan_json)
    base: dict[str, Any] = {
        "digest": plan.digest,
        "outversion": plan.outputs.outversion,
        "variant": _label(plan),
        "worker": worker,
        "task_id": self.request.id,
        "started": started,
    }
    problem = _refuse(plan)
    if problem:
        _fail(base, problem)

    from eib.farm.digestlock import DigestLock, holder
    from eib.farm.marker import read_marker
    from eib.farm.registry import connect
    from eib.secrets import resolve_secrets

    try:
        secrets = resolve_secrets(plan)
        found = read_marker(plan, secrets)
    except Exception as err:  # a missing secret, an unreachable target: say which
        _fail(base, f"cannot look for the build at its publish targets: {_text(err)}")
    if found is not None:
        return _already(base, found)
    client = connect(SETUP.broker)
    lock = DigestLock(client, plan.digest, f"{worker} {self.request.id}", SETUP.tunables.lock_ttl)
    if not lock.acquire():
        other = (holder(client, plan.digest) or "another-worker").split(" ")[0]
        log.info("%s: %s builds the same plan; looking again in %.0f s", base["variant"],
                 other, SETUP.tunables.retry_delay)
        raise self.retry(exc=SamePlanBuilding(f"the same plan is building on {other}"),
                         countdown=SETUP.tunables.retry_delay)
    try:
        found = read_marker(plan, secrets)  # finished between the first look and the lock
        if found is not None:
            return _already(base, found)
        return _build(self, plan, plan_json, base, lock)
    finally:
        lock.release()


def _text(err: BaseException) -> str:
    from eib.errors import EibError

    return str(err) if isinstance(err, EibError) else f"{type(err).__name__}: {err}"


def _fail(base: dict[str, Any], error: str, **extra: Any) -> NoReturn:
    log.error("%s: failed: %s", base.get("variant"), error)
    raise BuildFailed({"log_tail": [], **base, **extra, "status": FAILED, "error": error,
                       "finished": time.time()})


def _label(plan: Plan) -> str:
    from eib.farm.plans import variant_label

    return variant_label(plan)


def _refuse(plan: Plan) -> str:
    """Plans this worker must not run, said in one line."""
    if plan.with_digest().digest != plan.digest:
        return "the plan does not match its digest (changed after it was compiled)"
    if plan.eib_version != __version__:
        return f"the plan was made by eib {plan.eib_version}; this worker runs eib {__version__}"
    return ""


def _already(base: dict[str, Any], marker: dict[str, Any]) -> dict[str, Any]:
    log.info("%s: already built by %s", base["variant"], marker.get("worker"))
    return {
        **base,
        "status": ALREADY_BUILT,
        "finished": time.time(),
        "built_by": marker.get("worker"),
        "built_at": marker.get("finished"),
        "stages": marker.get("stages", {}),
        "outputs": marker.get("outputs", []),
        "log_tail": [],
    }


def _build(
    task: Task, plan: Plan, plan_json: str, base: dict[str, Any], lock: DigestLock
) -> dict[str, Any]:
    from eib.execute.staging import last_log
    from eib.farm.buildproc import BuildProcess, log_tail, output_names
    from eib.farm.marker import output_url, write_marker
    from eib.farm.slots import link_demo, take_slot
    from eib.publish.publisher import build_prefix
    from eib.secrets import resolve_secrets

    assert SETUP is not None
    with take_slot(SETUP.base) as slot, tempfile.TemporaryDirectory(prefix="eib-farm-") as tmp:
        link_demo(plan, slot)
        plan_file = Path(tmp) / "plan.json"
        plan_file.write_text(plan_json)
        build = BuildProcess(plan_file, slot)
        lock.start_renewing(on_lost=lambda: build.stop("lost the build lock"))
        progress = {**base, "slot": slot.number, "stage": "", "stage_started": time.time()}
        log.info("%s: building in slot %d", base["variant"], slot.number)

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "stage":
                progress.update(stage=event["name"], stage_started=event["time"])
                log.info("%s: stage %s", base["variant"], event["name"])
                task.update_state(state="PROGRESS", meta=progress)

        task.update_state(state="PROGRESS", meta={**progress, "stage": "starting"})
        outcome = build.run(on_event)
        tail = log_tail(last_log(slot.output, plan.outputs.log))
        names = output_names(slot.output)
    finished = time.time()
    result = {**base, "slot": slot.number, "finished": finished, "stages": outcome.stages,
              "log_tail": tail}
    if not outcome.ok or lock.lost.is_set():
        where = "/".join(p for p in (outcome.stage, outcome.step) if p)
        error = f"{where}: {outcome.error}" if where else outcome.error
        _fail(base, error or "lost the build lock", slot=slot.number, stages=outcome.stages,
              log_tail=tail)
    prefix = build_prefix(plan)
    outputs = [
        {"name": n, "urls": [output_url(t, prefix, n) for t in plan.publish.targets]}
        for n in names
    ]
    result.update(status=BUILT, outputs=outputs)
    try:
        write_marker(plan, resolve_secrets(plan), {
            key: result[key] for key in ("digest", "outversion", "variant", "worker", "task_id",
                                          "started", "finished", "stages", "outputs")
        })
    except Exception as err:
        _fail(base, f"published, but marking it as built failed: {_text(err)}",
              slot=slot.number, stages=outcome.stages, log_tail=tail)
    log.info("%s: built in %.1f s", base["variant"], finished - base["started"])
    return result
