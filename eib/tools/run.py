"""Running external tools: one place that logs the command and turns a
non-zero exit into a `BuildError` carrying the tool's own last words.

Every wrapper in `eib/tools/` goes through `run()`, so the build log shows each
command exactly once and a failure message always says which tool failed.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from eib.errors import BuildError
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
        proc = _run_owned(argv, cwd, env, text_input, capture, timeout)
    except FileNotFoundError as err:
        raise BuildError(f"required tool '{argv[0]}' is not installed") from err
    except subprocess.TimeoutExpired as err:
        raise BuildError(f"'{argv[0]}' timed out after {timeout} s") from err
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        raise BuildError(f"'{shlex.join(argv)}' exited with {proc.returncode}{detail}")
    return proc


def _run_owned(
    argv: list[str],
    cwd: Path | str | None,
    env: Mapping[str, str] | None,
    text_input: str | None,
    capture: bool,
    timeout: float | None,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run`, with the child recorded as the build's (`eib.tools.owned`)."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=owned.child_env(env),
        stdin=subprocess.PIPE if text_input is not None else None,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        text=True,
        preexec_fn=owned.preexec(),
    ) as proc:
        owned.spawned(proc.pid)
        try:
            stdout, stderr = proc.communicate(text_input, timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            owned.reaped(proc.pid)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
