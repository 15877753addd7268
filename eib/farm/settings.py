"""The Celery application and the farm's tunables, in one place.

Tasks are acknowledged only once their build has ended (`acks_late`), a
worker process that dies hands its task back (`reject_on_worker_lost`), and
a worker takes one task per free slot (`prefetch_multiplier=1`), so a dead
machine loses nothing: the Redis broker redelivers its unacknowledged task
once the visibility timeout has passed.  That timeout must exceed the
longest build, or a slow build is delivered a second time (the digest lock
then turns the copy into "already built", but a slot is wasted meanwhile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from eib.errors import UserError

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "eib.farm.build"
KEY_PREFIX = "eib-farm"
DEFAULT_VISIBILITY_TIMEOUT = 4 * 3600.0
DEFAULT_LOCK_TTL = 60.0
RESULT_EXPIRES = 7 * 24 * 3600
ARCH_QUEUES = ("amd64", "arm64", "i386")


@dataclass(frozen=True)
class Tunables:
    """Timeouts from the environment, so tests and small farms can shorten them.

    EIB_FARM_VISIBILITY_TIMEOUT: seconds before an unacknowledged task is
    delivered again; EIB_FARM_LOCK_TTL: seconds a digest lock outlives its
    last renewal (a dead worker's lock frees itself after this);
    EIB_FARM_RETRY_DELAY: seconds between looks at a digest another worker
    is building.
    """

    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    lock_ttl: float = DEFAULT_LOCK_TTL
    retry_delay: float = 10.0

    @classmethod
    def from_env(cls) -> Tunables:
        def number(name: str, default: float) -> float:
            text = os.environ.get(name, "")
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"must be a number of seconds, got {text!r}", key=name) from None
            if value <= 0:
                raise UserError("must be more than 0 seconds", key=name)
            return value

        return cls(
            visibility_timeout=number("EIB_FARM_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT),
            lock_ttl=number("EIB_FARM_LOCK_TTL", DEFAULT_LOCK_TTL),
            retry_delay=number("EIB_FARM_RETRY_DELAY", 10.0),
        )


def check_broker(url: str) -> str:
    """Only Redis is supported (broker, result backend and locks live there)."""
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss"):
        raise UserError(
            f"expected a redis:// or rediss:// URL, got {redact(url)!r}",
            key="--broker",
            hint="e.g. redis://:PASSWORD@farm.example.org:6379/0",
        )
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def make_app(broker: str, tunables: Tunables | None = None) -> Celery:
    """A Celery app bound to `broker` (also the result backend)."""
    from celery import Celery

    tunables = tunables or Tunables.from_env()
    check_broker(broker)
    app = Celery("eib.farm", broker=broker, backend=broker, set_as_current=True)
    visibility = tunables.visibility_timeout
    transport = {
        "visibility_timeout": visibility,
        # Look for abandoned tasks often enough to notice within a tenth of the timeout.
        "unacked_restore_interval": max(1, min(60, int(visibility // 10))),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_track_started=True,
        task_default_queue="amd64",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        result_expires=RESULT_EXPIRES,
        result_extended=True,
    )
    return app
