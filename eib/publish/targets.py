"""What every publish target does, and the pieces they share.

A target has a debos-like lifecycle so that failures clean up by
construction: `begin` makes the `.inprogress` marker, `upload` sends the
files, `finish` makes the build visible (removes the marker or renames into
place) and `abort` deletes whatever was sent.  The publisher drives several
targets through these steps together, so a build is either complete on every
target or on none.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eib.errors import BuildError, UserError

log = logging.getLogger("eib.publish")

MARKER = ".inprogress"
STAGE = "publish"


@dataclass(frozen=True)
class PublishFile:
    """One file to publish: its name below the build prefix and where its bytes are."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class PublishProgress:
    """A progress report: `sent` of `total` bytes of one target's upload are done."""

    target: str
    file: str
    sent: int
    total: int


ProgressCallback = Callable[[PublishProgress], None]


@dataclass(frozen=True)
class TransferSettings:
    """Tuning for uploads; tests shrink these so retries and multipart stay fast."""

    multipart_threshold: int = 64 * 1024 * 1024
    multipart_chunksize: int = 16 * 1024 * 1024
    max_concurrency: int = 4
    request_attempts: int = 5
    object_attempts: int = 3
    backoff_seconds: float = 2.0
    # A connection silent this long is a stall (S3 connect/read timeouts, rsync
    # --timeout, ssh ConnectTimeout): `EIB_NETWORK_STALL_TIMEOUT` by default.
    timeout_seconds: float = field(default_factory=lambda: stall_seconds())


def stall_seconds() -> float:
    """The stall timeout for sockets; a day stands for 'no limit' (0) where one is needed."""
    from eib.network import NetworkLimits

    return NetworkLimits.from_env().socket_timeout or 86400.0


class ProgressMeter:
    """Counts bytes of one target's upload and reports them; safe across threads."""

    def __init__(self, target: str, total: int, callback: ProgressCallback | None) -> None:
        self.target = target
        self.total = total
        self.sent = 0
        self._callback = callback
        self._lock = threading.Lock()

    def add(self, file: str, nbytes: int) -> None:
        with self._lock:
            self.sent += nbytes
            sent = self.sent
        if self._callback is not None:
            self._callback(PublishProgress(self.target, file, sent, self.total))

    def rewind(self, nbytes: int) -> None:
        """Forget bytes of an attempt that is retried from the start."""
        with self._lock:
            self.sent = max(0, self.sent - nbytes)


class Target(ABC):
    """One destination of one build (a target joined with the build prefix)."""

    kind: str

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the build goes, for messages; never holds a secret."""

    @abstractmethod
    def begin(self) -> None:
        """Create the destination and its `.inprogress` marker."""

    @abstractmethod
    def upload(self, files: Sequence[PublishFile], meter: ProgressMeter) -> None:
        """Send every file; raise BuildError on failure."""

    @abstractmethod
    def finish(self) -> None:
        """Make the complete build visible (remove the marker, rename into place)."""

    @abstractmethod
    def abort(self) -> None:
        """Delete everything of this build at the destination, marker included."""

    @abstractmethod
    def put_log(self, log_file: PublishFile) -> None:
        """Publish the build log alone (the error stage)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


def join_path(*parts: str) -> str:
    """Join path or key fragments with single slashes, keeping a leading '/' of the first."""
    cleaned = [p.strip("/") for p in parts if p.strip("/")]
    lead = "/" if parts and parts[0].startswith("/") else ""
    return lead + "/".join(cleaned)


def publish_error(message: str, *, step: str | None = None) -> BuildError:
    return BuildError(message, stage=STAGE, step=step)


def secret_value(secrets: Mapping[str, str], name: str, *, key: str) -> str:
    """The value of secret `name`, or a UserError naming the recipe key that wants it."""
    try:
        return secrets[name]
    except KeyError:
        raise UserError(
            f"secret '{name}' is not defined or has no value",
            key=key,
            hint="add it to the recipe's secrets section",
        ) from None


def secret_file(secrets: Mapping[str, str], name: str, workdir: Path, *, key: str) -> Path:
    """A private 0600 copy of secret `name`, deleted with the work dir.

    A secret read from a file arrives as that file's path; one given inline or
    through the environment arrives as the content itself.  Tools such as ssh
    insist on a key file only its owner can read, so either way the content
    is copied into the private work dir.
    """
    value = secret_value(secrets, name, key=key)
    single_line = "\n" not in value.strip() and len(value) < 4096
    source = Path(value.strip()) if single_line else None
    if source is not None and source.is_file():
        data = source.read_bytes()
    elif source is not None and value.strip().startswith("/"):
        raise UserError(f"the file of secret '{name}' does not exist", key=key)
    else:
        data = value.encode()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    fd, copy = tempfile.mkstemp(prefix="secret-", dir=workdir)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(copy)
