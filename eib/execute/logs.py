"""The build log: `build.txt` in the output dir holds everything.

Every eib logger (`eib.*`) is routed into the file at DEBUG level, so each
tool command, its output and each hook's output is there, while the terminal
only shows the monitor's progress lines.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from eib.tools import owned

GRACE_SECONDS = 2.0
FORMAT = "%(asctime)s %(name)s: %(message)s"


class ScrubbingFormatter(logging.Formatter):
    """Formats a record, then replaces every secret value in it by `<redacted>`."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class BuildLogHandler(logging.FileHandler):
    """`build.txt`'s handler: a line that cannot be written (the disk is full) is dropped.

    The default handler prints a traceback per lost line on stderr, burying
    the build's one-line error under them.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        pass


@contextmanager
def build_log(path: Path, scrub: Callable[[str], str] = str) -> Iterator[logging.Handler]:
    """Append every `eib.*` record to `path`, secrets scrubbed, while the build runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = BuildLogHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(ScrubbingFormatter(scrub))
    root = logging.getLogger("eib")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        with suppress(OSError):  # the disk is full: the build's own error says so
            handler.close()


def stream_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    logger: logging.Logger,
    prefix: str,
    after_exit: Callable[[], None] | None = None,
) -> tuple[int, list[str]]:
    """Run `argv`, logging each output line as it comes; return (status, last lines).

    A command may leave a background process holding its output pipe open;
    once the command itself has exited, `after_exit` runs (e.g. to kill what
    it left in a chroot) and reading stops after a short grace period, so a
    stray daemon can never hang the build.
    """
    logger.debug("$ %s", " ".join(argv))
    tail: list[str] = []
    pending = b""

    def emit(raw: bytes) -> None:
        nonlocal tail
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        logger.info("%s%s", prefix, line)
        tail = [*tail[-9:], line]

    with subprocess.Popen(
        list(argv),
        env=owned.child_env(env),
        preexec_fn=owned.preexec(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Its own process group, so whatever it leaves running can be ended with it.
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        owned.spawned(proc.pid)
        try:
            fd = proc.stdout.fileno()
            exited_at: float | None = None
            while True:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        emit(raw)
                    continue
                if proc.poll() is None:
                    continue
                if exited_at is None:
                    exited_at = time.monotonic()
                    _kill_group(proc.pid, logger, prefix)
                    if after_exit is not None:
                        after_exit()
                elif time.monotonic() - exited_at > GRACE_SECONDS:
                    logger.warning("%sleft processes holding its output; not waiting", prefix)
                    break
            if pending:
                emit(pending)
        except BaseException:
            # Interrupted (SIGTERM, Ctrl-C): do not leave the command running.
            proc.kill()
            _kill_group(proc.pid, logger, prefix)
            raise
        status = proc.wait()
    owned.reaped(proc.pid)
    return status, tail


def _kill_group(pgid: int, logger: logging.Logger, prefix: str) -> None:
    """End the processes a command left in its group (e.g. `daemon &` in a hook)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    logger.warning("%sleft background processes; they were killed", prefix)
