"""Running external tools: one place that logs the command and turns a
non-zero exit into a `BuildError` carrying the tool's own last words.

Every wrapper in `eib/tools/` goes through `run()`, so the build log shows each
command exactly once and a failure message always says which tool failed.

The tools running are tracked: a signal is raised in the main thread only, so
when it stops a build while worker threads wait on tools (the outputs made in
parallel), `end_running_tools()` ends those tools and the threads return at
once instead of finishing their work first.  It runs as soon as the signal
arrives (`eib.interrupt.at_signal`): the main thread may itself be waiting
for such a thread, or writing into a pipe a tool no longer reads.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eib.errors import BuildError
from eib.interrupt import at_signal
from eib.tools import owned

log = logging.getLogger("eib.tools")

Command = Sequence[str | Path]


def require(tool: str) -> str:
    """The absolute path of `tool`, or a BuildError saying which package lacks."""
    path = shutil.which(tool)
    if path is None:
        raise BuildError(f"required tool '{tool}' is not installed")
    return path


def run(
    cmd: Command,
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | str | None = None,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, log it, and raise BuildError (with stderr's tail) when it fails."""
    argv = [str(c) for c in cmd]
    log.debug("$ %s", shlex.join(argv))
    text_input = input.decode() if isinstance(input, bytes) else input
    try:
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=owned.child_env(env),
            stdin=subprocess.PIPE if text_input is not None else None,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            preexec_fn=owned.preexec(),
        )
    except FileNotFoundError as err:
        raise BuildError(f"required tool '{argv[0]}' is not installed") from err
    owned.spawned(child.pid)
    with tracked(child):
        try:
            stdout, stderr = child.communicate(text_input, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            child.kill()
            child.communicate()
            raise BuildError(f"'{argv[0]}' timed out after {timeout} s") from err
        except BaseException:
            # Stopped (a signal): the tool must not outlive the wait for it.
            child.kill()
            child.wait()
            raise
        finally:
            if child.returncode is not None:
                owned.reaped(child.pid)
    proc = subprocess.CompletedProcess(argv, child.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        raise BuildError(f"'{shlex.join(argv)}' exited with {proc.returncode}{detail}")
    return proc


_running: set[subprocess.Popen[Any]] = set()
# Reentrant: the signal handler ends the tools in the main thread, which may hold it.
_running_lock = threading.RLock()


def track(proc: subprocess.Popen[Any]) -> None:
    """Count `proc` among the running tools (until `untrack`)."""
    with _running_lock:
        _running.add(proc)


def untrack(proc: subprocess.Popen[Any]) -> None:
    with _running_lock:
        _running.discard(proc)


@contextmanager
def tracked(proc: subprocess.Popen[Any]) -> Iterator[None]:
    """Count `proc` among the running tools while the block runs."""
    track(proc)
    try:
        yield
    finally:
        untrack(proc)


def end_running_tools() -> None:
    """Kill every tracked tool still running (their waiting threads then return)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        if proc.poll() is None:
            log.debug("ending %s (pid %d)", proc.args, proc.pid)
            proc.kill()


at_signal(end_running_tools)
