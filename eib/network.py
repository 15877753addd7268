"""How long eib waits on the network: a stall timeout and an overall deadline.

A server that accepts a connection and then never answers, or answers one
byte every few seconds, must not hang a build forever.  Two limits apply to
every download and upload eib does itself or through a tool it runs:

* the **stall timeout** (`EIB_NETWORK_STALL_TIMEOUT`, default 120 s): no
  progress (no data arriving or written) for this long ends the attempt;
  it may be retried;
* the **deadline** (`EIB_NETWORK_DEADLINE`, default 4 h): one network step,
  all its retries included, is given up after this long.

They are runtime settings read from the environment, not plan settings: how
patient one host is with its network does not change what is built, so it
must not change the plan digest.  `0` turns a limit off.
"""

from __future__ import annotations

import http.client
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from eib.errors import BuildError, UserError

STALL_ENV = "EIB_NETWORK_STALL_TIMEOUT"
DEADLINE_ENV = "EIB_NETWORK_DEADLINE"
DEFAULT_STALL = 120.0
DEFAULT_DEADLINE = 4 * 3600.0
CHUNK = 1 << 20


class NetworkStall(BuildError):
    """No progress for the stall timeout; another attempt may fare better."""


class NetworkDeadline(BuildError):
    """The step ran past its deadline; retrying would only run later past it."""


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise UserError(f"must be a number of seconds (0: no limit), not '{text}'", key=name)
    return value


@dataclass(frozen=True)
class NetworkLimits:
    """The two limits, in seconds; 0 (or less) means no limit."""

    stall: float = DEFAULT_STALL
    deadline: float = DEFAULT_DEADLINE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NetworkLimits:
        """The limits this process runs with; a bad value is a UserError (exit 2)."""
        env = os.environ if environ is None else environ
        return cls(_seconds(env, STALL_ENV, DEFAULT_STALL),
                   _seconds(env, DEADLINE_ENV, DEFAULT_DEADLINE))

    @property
    def socket_timeout(self) -> float | None:
        """A timeout for one blocking socket operation: the stall timeout, or none."""
        return self.stall if self.stall > 0 else None

    def start(self) -> Deadline:
        """The deadline of a step starting now."""
        return Deadline(time.monotonic() + self.deadline if self.deadline > 0 else math.inf, self)

    def stall_error(self, what: str) -> NetworkStall:
        return NetworkStall(
            f"{what} stalled: no progress for {self.stall:g} s ({STALL_ENV}={self.stall:g})"
        )

    def deadline_error(self, what: str) -> NetworkDeadline:
        return NetworkDeadline(
            f"{what} did not finish within {self.deadline:g} s "
            f"({DEADLINE_ENV}={self.deadline:g})"
        )


@dataclass(frozen=True)
class Deadline:
    """The moment (monotonic clock) a network step must be done by."""

    at: float
    limits: NetworkLimits

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def check(self, what: str) -> None:
        if self.passed():
            raise self.limits.deadline_error(what)


def copy_limited(source: BinaryIO, dest: BinaryIO, deadline: Deadline, what: str) -> int:
    """Copy a response body to `dest`, giving up at the deadline.

    The stall timeout is the socket's own timeout (`socket_timeout`), set
    when the connection is opened; a read that times out is a stall.  A
    trickle that beats the stall timeout still ends at the deadline, and a
    body cut short by a dropped connection is an error, never a short file.
    """
    total = 0
    while True:
        deadline.check(what)
        try:
            block = source.read1(CHUNK) if hasattr(source, "read1") else source.read(CHUNK)
        except TimeoutError as err:
            raise deadline.limits.stall_error(what) from err
        except http.client.IncompleteRead as err:  # a chunked body cut short
            raise BuildError(f"{what}: the connection was closed before the end "
                             f"of the response") from err
        if not block:
            _check_complete(source, total, what)
            return total
        dest.write(block)
        total += len(block)


def _check_complete(source: BinaryIO, total: int, what: str) -> None:
    """Refuse a body shorter than its `Content-Length`.

    An HTTP response's `read1` returns no data, and raises nothing, when the
    server drops the connection early; only the length left unread tells a
    dropped connection from the end of the body.
    """
    missing = getattr(source, "length", None)
    if isinstance(missing, int) and missing > 0:
        raise BuildError(f"{what}: the connection was closed after {total} of "
                         f"{total + missing} bytes")


def backoff(attempt: int, *, base: float = 1.0, cap: float = 30.0) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): doubling, capped."""
    return float(min(base * 2 ** (attempt - 1), cap))
