"""The server: load everything once, then fork one child per command.

Heavy modules are imported by `warm_up`, after the server has won the
lock, so callers racing to start a server cost little.  A child starts
from the warm state (typer, pydantic, PyYAML imported, the
recipe and plan validators built), takes on the caller's argv, environment,
working directory, umask and standard streams, runs the CLI exactly as the
`eib` entry point would, and exits with its status.  The parent keeps the
connection and reports the child's wait status, so a child killed by a
signal is reported too.  Only one thread ever runs here, which keeps fork()
safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

from eib.server import wire
from eib.server.address import ServerAddress, code_fingerprint, runtime_dir

if TYPE_CHECKING:
    import click

IDLE_SECONDS = 1800.0  # EIB_SERVER_IDLE overrides
CHECK_SECONDS = 30.0  # how often an idle server checks that its code is unchanged
REQUEST_TIMEOUT = 5.0
BACKLOG = 64


def warm_up() -> click.Command:
    """Import and build what the quick commands use, so children start warm.

    Compiling and printing a small plan (as a tree and as JSON) builds every
    validator and serializer `eib plan` needs; the CLI itself is imported
    but not run, since running it would narrow its command list.
    """
    import tempfile
    from pathlib import Path

    import typer.rich_utils  # noqa: F401 - typer imports it to format any option's help

    import eib.commands.convert
    import eib.commands.legacy
    import eib.schema  # noqa: F401
    from eib import cli
    from eib.commands.plan import run_plan

    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        recipe = Path(scratch, "warm.yaml")
        recipe.write_text(
            "eib: 1\nflatpak:\n  remotes:\n    r: {gpg_verify: false, apps: [a.b.C]}\n"
        )
        for as_json in (False, True):
            run_plan(
                recipe,
                {"arch": "amd64"},
                sets=[],
                localdir=None,
                as_json=as_json,
                explain=None,
                diff=None,
                matrix=[],
                lock=None,
            )
    return cli.full_command()


class Server:
    def __init__(
        self,
        address: ServerAddress,
        listener: socket.socket,
        idle: float,
        command: click.Command,
    ) -> None:
        self.command = command
        self.address = address
        self.listener = listener
        self.idle = idle
        self.started = time.time()
        self.last_active = time.monotonic()
        self.served = 0
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        signal.set_wakeup_fd(self.wake_w)
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ, "accept")
        selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        next_check = time.monotonic() + CHECK_SECONDS
        while not (self.stopping and not self.children):
            idle_left = self.last_active + self.idle - time.monotonic()
            # With children running, their SIGCHLD wakes us; idleness cannot end yet.
            timeout = CHECK_SECONDS if self.children else min(CHECK_SECONDS, max(0.0, idle_left))
            for key, _ in selector.select(timeout):
                if key.data == "accept":
                    self._accept()
                else:
                    self._drain_wakeups()
            self._reap()
            now = time.monotonic()
            if not self.children and now - self.last_active >= self.idle:
                self.stopping = True
            elif now >= next_check:
                next_check = now + CHECK_SECONDS
                if not self.children and code_fingerprint() != self.address.fingerprint:
                    self.stopping = True  # the code changed: a new server takes over
            if self.stopping and self.listener.fileno() != -1:
                selector.unregister(self.listener)
                self.listener.close()  # callers now fall back to running in-process

    def _request_stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.last_active = time.monotonic()
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            if not _same_user(conn):
                raise wire.WireError("caller is another user")
            request, fds = wire.receive(conn, max_fds=wire.MAX_FDS)
        except (OSError, wire.WireError):
            conn.close()
            return
        op = request.get("op")
        if op == "run" and len(fds) == 4 and not self.stopping:
            self._fork(conn, request, fds)
            return
        for fd in fds:
            os.close(fd)
        try:
            if op == "run":  # the caller runs the command itself
                wire.send(conn, {"error": "stopping" if self.stopping else "bad request"})
            elif op == "status":
                wire.send(conn, self.status())
            elif op == "stop":
                self.stopping = True
                wire.send(conn, {"stopping": True, "pid": os.getpid()})
            else:
                wire.send(conn, {"error": f"unknown request {op!r}"})
        except OSError:
            pass
        conn.close()

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "fingerprint": self.address.fingerprint,
            "started": self.started,
            "served": self.served,
            "running": len(self.children),
            "idle_timeout": self.idle,
        }

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            self._become_child(conn, request, fds)
        for fd in fds:
            os.close(fd)
        self.served += 1
        self.children[pid] = conn
        with contextlib.suppress(OSError):  # the caller left: the child runs on, unheard
            wire.send(conn, {"pid": pid})

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            self.last_active = time.monotonic()
            with contextlib.suppress(OSError):
                wire.send(conn, {"exit": _exit_code(status)})
            conn.close()

    def _become_child(
        self, conn: socket.socket, request: dict[str, Any], fds: list[int]
    ) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.listener.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            for other in self.children.values():
                other.close()
            conn.close()
            adopt_caller(request, fds)
            code = run_cli(request["argv"], self.command)
        except BaseException:  # a child must always reach os._exit
            traceback.print_exc()
        finally:
            _flush_quietly()
            os._exit(code)


def adopt_caller(request: dict[str, Any], fds: list[int]) -> None:
    """Become the caller: its streams, working directory, umask and environment."""
    stdin, stdout, stderr, cwd = fds
    for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
    for fd in {stdin, stdout, stderr} - {0, 1, 2}:
        os.close(fd)
    os.fchdir(cwd)
    os.close(cwd)
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    time.tzset()  # local time follows the caller's TZ, as it would in its own process
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = _text_stream(0, "r", sys.__stdin__, unbuffered)
    sys.stdout = _text_stream(1, "w", sys.__stdout__, unbuffered)
    sys.stderr = _text_stream(2, "w", sys.__stderr__, unbuffered, line_buffered=True)


def _text_stream(
    fd: int, mode: str, like: Any, unbuffered: bool, line_buffered: bool = False
) -> io.TextIOWrapper:
    """A stream on `fd` built as the interpreter builds its own (create_stdio):
    with PYTHONUNBUFFERED an unbuffered file under a write-through wrapper,
    which also decides how a closed pipe shows (`eib plan | head`)."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffer: io.RawIOBase | io.BufferedIOBase
    if unbuffered and mode == "w":
        buffer = raw
    elif mode == "w":
        buffer = io.BufferedWriter(raw)
    else:
        buffer = io.BufferedReader(raw)
    return io.TextIOWrapper(
        buffer,
        encoding=getattr(like, "encoding", None) or "utf-8",
        errors=getattr(like, "errors", None) or "strict",
        newline="\n",
        line_buffering=mode == "w" and not unbuffered and (line_buffered or raw.isatty()),
        write_through=unbuffered,
    )


def run_cli(argv: list[str], command: click.Command) -> int:
    """Run the CLI as the `eib` entry point does; its exit status."""
    from eib import cli

    sys.argv = list(argv)
    try:
        cli.main(command)
    except SystemExit as done:
        if done.code is None:
            return 0
        if isinstance(done.code, int):
            return done.code
        sys.stderr.write(f"{done.code}\n")
        return 1
    return 0


def _flush_quietly() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _idle_seconds() -> float:
    try:
        return max(0.1, float(os.environ.get("EIB_SERVER_IDLE", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


def main() -> None:
    """`python -c 'from eib.server.daemon import main; main()' FINGERPRINT`."""
    fingerprint = sys.argv[1]
    directory = runtime_dir()
    if directory is None:
        return
    address = ServerAddress(directory, fingerprint)
    with open(address.lock, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another server for the same code is starting or running
        try:
            _remove_leftovers(directory, keep=fingerprint)
            command = warm_up()
            # Out of the collector's sight: it would otherwise touch, and so
            # copy, the warm pages of every forked child.
            gc.freeze()
            listener = _listen(address.socket)
            try:
                Server(address, listener, _idle_seconds(), command).serve()
            finally:
                listener.close()
        finally:
            _remove_files(address, remove_log=_is_empty(address.log))


def _listen(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        if os.path.lexists(path):
            os.unlink(path)  # left by a server that died
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(BACKLOG)
    return listener


def _remove_leftovers(directory: str, keep: str) -> None:
    """Files of servers that are gone (lock free): older code, or a crash."""
    for name in os.listdir(directory):
        fingerprint, _dot, suffix = name.partition(".")
        if suffix != "lock" or fingerprint == keep:
            continue
        address = ServerAddress(directory, fingerprint)
        with open(address.lock, "a+") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # alive
            _remove_files(address, remove_log=True)


def _remove_files(address: ServerAddress, *, remove_log: bool) -> None:
    paths = [address.socket, address.lock] + ([address.log] if remove_log else [])
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _is_empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return True


if __name__ == "__main__":
    main()
