"""The caller's side: hand a quick command to a warm server, or start one.

`run_on_server` returns the command's exit status, or None when the command
must run in this process: the command is not a quick one, the server is
disabled, or no server is up yet (then one is started for the next call).
Whatever goes wrong with the server before the command starts falls back to
running in-process, so the server can only ever make eib faster.

Like `wire`, this runs in every `eib` process and uses the built-in
`_socket` and `_signal` rather than their wrappers, which import `enum`,
`selectors` and more than the whole client costs otherwise.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stubs; `signal` imports enum
import _socket
import os
import sys

from eib.server import wire
from eib.server.address import ServerAddress, server_address

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Commands without side effects beyond writing where the user asked; they are
# safe to run in a child of a long-lived process.
QUICK_COMMANDS = frozenset({"plan", "validate", "schema", "legacy", "convert"})
HELP_FLAGS = frozenset({"--help", "-h"})
DISABLED = frozenset({"0", "off", "no", "false"})
FORWARDED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
CONNECT_TIMEOUT = 2.0
SERVER_PROGRAM = "from eib.server.daemon import main; main()"


def is_quick(args: list[str]) -> bool:
    """True for the commands the server may run (`args` without the program name)."""
    if not args:
        return True  # prints the help, or answers shell completion
    if len(args) == 1 and (args[0] in HELP_FLAGS or args[0] == "--version"):
        return True
    if args[0] in QUICK_COMMANDS:
        return True
    return len(args) == 2 and not args[0].startswith("-") and args[1] in HELP_FLAGS


def server_enabled(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    return environ.get("EIB_SERVER", "auto").lower() not in DISABLED


def run_on_server(argv: list[str]) -> int | None:
    if not server_enabled() or not is_quick(argv[1:]):
        return None
    address = server_address()
    if address is None:
        return None
    sock = _connect(address)
    if sock is None:
        start_server(address)
        return None
    try:
        return _run(sock, argv)
    finally:
        sock.close()


def _connect(address: ServerAddress) -> _socket.socket | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(address.socket)
    except OSError:
        sock.close()
        return None
    return sock


def _run(sock: _socket.socket, argv: list[str]) -> int | None:
    request: dict[str, Any] = {
        "op": "run",
        "argv": argv,
        "env": dict(os.environ),
        "umask": _current_umask(),
    }
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        wire.send(sock, request, [_usable_fd(0), _usable_fd(1), _usable_fd(2), cwd])
        reply, _ = wire.receive(sock)
    except (OSError, wire.WireError):
        return None  # the command did not start: run it here
    finally:
        os.close(cwd)
    pid = reply.get("pid")
    if not isinstance(pid, int):
        return None
    sock.settimeout(None)
    forward = _forward_signals_to(pid)
    try:
        status, _ = wire.receive(sock)
    except (OSError, wire.WireError):
        sys.stderr.write("eib: lost the connection to the eib server\n")
        return 1
    finally:
        for signum, previous in forward.items():
            _signal.signal(signum, previous)
    code = status.get("exit")
    return code if isinstance(code, int) else 1


def _forward_signals_to(pid: int) -> dict[int, Any]:
    """Ctrl-C and friends reach the child as if it were this process."""

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return  # it has just exited

    return {signum: _signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usable_fd(fd: int) -> int:
    """The caller's descriptor, or /dev/null in its place when it is closed."""
    try:
        os.fstat(fd)
    except OSError:
        return os.open(os.devnull, os.O_RDWR)
    return fd


def start_server(address: ServerAddress) -> None:
    """Start a server in the background; it outlives this process.

    The server takes a lock first, so callers racing to start one end up
    with exactly one.
    """
    import subprocess

    try:
        log = os.open(address.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return
    try:
        subprocess.Popen(
            # -P: no working directory on the import path (a child works in the caller's)
            [sys.executable, "-P", "-c", SERVER_PROGRAM, address.fingerprint],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=address.directory,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass
    finally:
        os.close(log)


def send_control(address: ServerAddress, op: str) -> dict[str, Any] | None:
    """Ask a running server for its `status`, or to `stop`; None when none is up."""
    sock = _connect(address)
    if sock is None:
        return None
    try:
        wire.send(sock, {"op": op})
        reply, _ = wire.receive(sock)
    except (OSError, wire.WireError):
        return None
    finally:
        sock.close()
    return reply
