"""What was submitted: the farm's own small index in Redis.

Celery's result backend answers "how is task X?" but cannot list tasks, and
knows nothing of a task still waiting in its queue.  `submit` therefore
records each task (variant, queue, digest, time) in a sorted set, which is
what `status` and `submit --wait` walk; entries expire with the results.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from eib.farm.settings import KEY_PREFIX, RESULT_EXPIRES

if TYPE_CHECKING:
    from redis import Redis

INDEX = f"{KEY_PREFIX}:tasks"


def connect(url: str) -> Redis:
    from redis import Redis

    return Redis.from_url(url, socket_connect_timeout=10, socket_timeout=30)


@dataclass(frozen=True)
class Submitted:
    """One task as `submit` sent it."""

    task_id: str
    variant: str
    outversion: str
    digest: str
    queue: str
    submitted: float


def task_key(task_id: str) -> str:
    return f"{KEY_PREFIX}:task:{task_id}"


def record(client: Redis, entries: list[Submitted]) -> None:
    pipe = client.pipeline()
    for entry in entries:
        pipe.set(task_key(entry.task_id), json.dumps(asdict(entry)), ex=RESULT_EXPIRES)
        pipe.zadd(INDEX, {entry.task_id: entry.submitted})
    pipe.zremrangebyscore(INDEX, 0, time.time() - RESULT_EXPIRES)
    pipe.execute()


def load(client: Redis, task_ids: list[str] | None = None) -> list[Submitted]:
    """The given tasks, or every recorded one, oldest first."""
    if task_ids is None:
        task_ids = [t.decode() if isinstance(t, bytes) else str(t)
                    for t in client.zrange(INDEX, 0, -1)]
    if not task_ids:
        return []
    raw = client.mget([task_key(t) for t in task_ids])
    return [Submitted(**json.loads(r)) for r in raw if r is not None]


def queue_length(client: Redis, queue: str) -> int:
    """Messages waiting in a Celery queue (kombu keeps one list per priority step)."""
    from kombu.transport.redis import PRIORITY_STEPS

    sep = "\x06\x16"
    keys = [queue] + [f"{queue}{sep}{p}" for p in PRIORITY_STEPS if p]
    return sum(int(client.llen(k)) for k in keys)
