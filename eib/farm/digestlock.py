"""A Redis lock per plan digest, so two workers never build one plan at once.

`SET key token NX PX ttl` takes it; a thread renews it every third of the
TTL with a compare-and-expire script, and release is a compare-and-delete,
so a worker only ever extends or frees its own lock.  If the worker dies,
the lock frees itself after the TTL.  If a renewal finds the lock gone (the
worker stalled longer than the TTL, or lost Redis), `lost` is set and the
build is stopped before it can publish over someone else's.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from eib.farm.settings import KEY_PREFIX

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("eib.farm.lock")

RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def lock_key(digest: str) -> str:
    return f"{KEY_PREFIX}:lock:{digest}"


def holder(client: Redis, digest: str) -> str | None:
    """Who holds the digest's lock (`worker task-id nonce`), or None."""
    value = client.get(lock_key(digest))
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class DigestLock:
    def __init__(self, client: Redis, digest: str, owner: str, ttl: float) -> None:
        self.client = client
        self.key = lock_key(digest)
        self.token = f"{owner} {uuid.uuid4().hex}"
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_lost: Callable[[], None] | None = None

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def start_renewing(self, on_lost: Callable[[], None] | None = None) -> None:
        self.on_lost = on_lost
        self._thread = threading.Thread(target=self._renew, name="eib-farm-lock", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            try:
                kept = self.client.eval(RENEW, 1, self.key, self.token, self.ttl_ms)
            except Exception as err:  # Redis unreachable: keep trying until the TTL runs out
                log.warning("renewing %s failed: %s", self.key, err)
                continue
            if not kept:
                log.error("lost %s: another worker may build this plan now", self.key)
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.client.eval(RELEASE, 1, self.key, self.token)
        except Exception as err:  # it expires by itself
            log.warning("releasing %s failed: %s", self.key, err)
