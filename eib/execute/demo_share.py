"""One demo server per host and port, shared by every build that needs it.

The demo's port is part of the plan (its URLs end up in the image's remote
configuration), so two builds of demo plans on one host (a farm worker with
several slots, two workers, an `eib run` beside them) all want the same
127.0.0.1 port.  Rather than let the second one fail, builds share one
server:

* every user holds a shared `flock` on `<lockdir>/eib-demo-<port>.users`
  while it needs the server;
* under an exclusive `.start` lock, a user finds the port serving the same
  demo (checked by its public key) or starts a detached server process
  (`python -m eib.execute.demo_share ROOT PORT USERS`);
* that process serves until it can take the users lock exclusively, i.e.
  no build uses it any more, lingers a moment for back-to-back builds, then
  closes its socket *before* letting go of the lock, so a build arriving at
  that moment waits and starts a fresh server.

No build ever waits for another build to finish, a killed build releases
its share with its file descriptors, and nothing outlives the last user.
(It lives with the executor, not in `eib.demo`, whose own sources are an
input of the demo OS: editing them rebuilds the demo.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eib.errors import BuildError
from eib.tools import owned

log = logging.getLogger("eib.execute.demo_share")

KEY_PATH = "keys/eib-demo.asc"
LINGER_SECONDS = 2.0
START_TIMEOUT = 20.0


def lock_dir() -> Path:
    """Host-wide, like the port: the same directory for every build on the host.

    Neither `tempfile.gettempdir()` (a build points that at its own dir) nor
    $TMPDIR (builds started with different ones would each think they own
    the server): root's builds use `/run/eib/demo`, made 0700."""
    if os.environ.get("EIB_DEMO_LOCK_DIR"):
        return Path(os.environ["EIB_DEMO_LOCK_DIR"])
    if os.geteuid() != 0:
        return Path("/tmp")
    from eib.execute.safedirs import ensure_private_dir

    path = Path("/run/eib/demo")
    ensure_private_dir(path, key="EIB_DEMO_LOCK_DIR")
    return path


def _open_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(PermissionError):  # another user's file: usable all the same
        os.fchmod(fd, 0o666)
    return fd


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def serves_root(port: int, root: Path) -> bool:
    """Whether 127.0.0.1:`port` serves this demo (the same public key)."""
    try:
        expected = (root / KEY_PATH).read_bytes()
    except OSError:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{KEY_PATH}", timeout=5) as reply:
            return bool(reply.read() == expected)
    except (urllib.error.URLError, OSError):
        return False


def _start_server(root: Path, port: int, users: Path) -> None:
    """Start the detached server process and wait until it listens."""
    server_log = lock_dir() / f"eib-demo-{port}.log"
    with open(server_log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eib.execute.demo_share", str(root), str(port), str(users)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            # Shared by the builds of the host: not ended with the build that started it.
            env=owned.without_mark(os.environ),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if listening(port):
            log.info("demo server pid %d on 127.0.0.1:%d", proc.pid, port)
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    tail = server_log.read_text(errors="replace").splitlines()[-1:] if server_log.exists() else []
    raise BuildError(
        f"cannot serve the demo on 127.0.0.1:{port}" + (f": {tail[0]}" if tail else ""),
        stage="ostree",
        step="demo",
    )


def _use_or_start(root: Path, port: int, users: Path) -> None:
    """Share the server on `port`, or start one when the port is free.

    A port that answers but not with this demo may be a server of ours still
    closing (or a build's demo being rebuilt): give it a moment to go away
    before calling the port taken.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while listening(port):
        if serves_root(port, root):
            log.info("sharing the demo server on 127.0.0.1:%d", port)
            return
        if time.monotonic() > deadline:
            raise BuildError(
                f"127.0.0.1:{port} is in use by something other than this demo "
                f"({root}); free the port or set another demo.port",
                stage="ostree",
                step="demo",
            )
        time.sleep(0.5)
    _start_server(root, port, users)


@contextmanager
def shared_serve(root: Path, port: int) -> Iterator[str]:
    """Use (or start) the host's demo server for `root` on `port`; yields its URL."""
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    users = directory / f"eib-demo-{port}.users"
    users_fd = _open_lock(users)
    try:
        fcntl.flock(users_fd, fcntl.LOCK_SH)
        start_fd = _open_lock(directory / f"eib-demo-{port}.start")
        try:
            fcntl.flock(start_fd, fcntl.LOCK_EX)
            _use_or_start(root, port, users)
        finally:
            os.close(start_fd)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.close(users_fd)


def serve_until_unused(root: Path, port: int, users: Path) -> None:
    """The server process: serve `root` until no build holds the users lock."""
    from eib.demo.serve import serve

    fd = _open_lock(users)
    idle_since: float | None = None
    with serve(root, port):
        while True:
            time.sleep(0.2)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= LINGER_SECONDS:
                break  # leave the block (close the socket) while still holding the lock
            fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def main(argv: list[str]) -> int:
    root, port, users = Path(argv[0]), int(argv[1]), Path(argv[2])
    try:
        serve_until_unused(root, port, users)
    except Exception as err:  # reported to the starting build through the log file
        sys.stderr.write(f"{err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
