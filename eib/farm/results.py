"""One view of a submitted task, from the registry, Celery's backend and the lock.

States people see: queued (in its queue, or waiting for a retry), running
(which worker, which stage, since when), built, already-built, failed, and
lost (the backend says running but nobody holds its lock any more: the
worker died, and the broker will deliver the task again once the visibility
timeout has passed).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eib.farm.registry import Submitted

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

QUEUED = "queued"
WAITING = "waiting"
RUNNING = "running"
LOST = "lost"
FINISHED_OK = ("built", "already-built")
DONE = ("built", "already-built", "failed")


@dataclass
class TaskView:
    task_id: str
    variant: str
    outversion: str
    digest: str
    queue: str
    submitted: float
    status: str
    worker: str = ""
    stage: str = ""
    since: float = 0.0
    elapsed: float = 0.0
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in DONE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("result")
        for key in ("stages", "outputs", "log_tail", "built_by", "built_at", "slot",
                    "started", "finished"):
            if key in self.result:
                data[key] = self.result[key]
        return data


def view(app: Celery, client: Redis, entry: Submitted, now: float | None = None) -> TaskView:
    from celery import states

    from eib.farm.digestlock import holder
    from eib.farm.task import BuildFailed

    now = now or time.time()
    result = app.AsyncResult(entry.task_id)
    state = result.state
    info = result.info
    base = TaskView(entry.task_id, entry.variant, entry.outversion, entry.digest, entry.queue,
                    entry.submitted, QUEUED, since=entry.submitted)
    if state == states.SUCCESS and isinstance(info, dict):
        return _finished(base, info)
    if state == states.FAILURE:
        if isinstance(info, BuildFailed):
            return _finished(base, info.result)
        base.status, base.error = "failed", f"{type(info).__name__}: {info}"
        base.result = {"status": "failed", "error": base.error}
        return base
    if state == states.RETRY:
        base.status, base.error = WAITING, str(info)
        return base
    if state in ("PROGRESS", states.STARTED):
        meta = info if isinstance(info, dict) else {}
        base.worker = str(meta.get("worker") or meta.get("hostname") or "")
        base.stage = str(meta.get("stage") or "starting")
        base.since = float(meta.get("started") or now)
        base.elapsed = now - base.since
        base.status = RUNNING
        if state == "PROGRESS":  # building: its worker renews the digest lock
            lock = holder(client, entry.digest)
            if not lock or entry.task_id not in lock.split(" "):
                base.status = LOST
        return base
    base.elapsed = now - entry.submitted
    return base


def _finished(base: TaskView, info: dict[str, Any]) -> TaskView:
    base.status = str(info.get("status", "failed"))
    base.worker = str(info.get("worker", ""))
    base.since = float(info.get("started", base.submitted))
    base.elapsed = float(info.get("finished", base.since)) - base.since
    base.error = str(info.get("error", ""))
    base.result = info
    return base
