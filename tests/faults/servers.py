"""Misbehaving servers on 127.0.0.1 for fault tests.

`stalled_server` accepts connections and never answers; `trickling_server`
answers with a valid header and then one body byte every `interval`
seconds.  Both keep their sockets open until stopped, like a broken proxy
or an overloaded mirror would.  `truncating_server` stands in front of a
real repo and drops the connection halfway through each object file, after
promising the whole of it in `Content-Length`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Serve = Callable[[socket.socket, threading.Event], None]


def _stall(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def _trickle(interval: float) -> Serve:
    def serve(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(1)
        with contextlib.suppress(OSError):
            conn.recv(65536)  # the request
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
            while not stop.wait(interval):
                conn.sendall(b"x")
    return serve


def _request_path(conn: socket.socket) -> tuple[str, str]:
    """(method, path) of the request on `conn`; its headers are read and ignored."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = conn.recv(65536)
        if not block:
            break
        data += block
    method, path = ([*data.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""])[:2]
    return method, path


@dataclass
class Truncating:
    """A truncating server's base URL and the paths it cut short so far."""

    url: str
    truncated: list[str] = field(default_factory=list)


def _truncate(upstream: str, cut: Callable[[str], bool], truncated: list[str]) -> Serve:
    def serve(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            method, path = _request_path(conn)
            if not path:
                return
            try:
                with urllib.request.urlopen(upstream + path, timeout=10) as resp:
                    status, body = resp.status, resp.read()
            except urllib.error.HTTPError as err:
                status, body = err.code, err.read()
            conn.sendall(f"HTTP/1.1 {status} Whatever\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode())
            if method == "HEAD":
                return
            if status == 200 and cut(path) and len(body) > 1:
                truncated.append(path)
                body = body[:len(body) // 2]
            conn.sendall(body)
        # Dropped, not ended: the client was promised the whole body.
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
    return serve


def is_object(path: str) -> bool:
    """Whether a repo path is an OSTree object file (detached metadata is not)."""
    return "/objects/" in path and not path.endswith(".commitmeta")


@contextlib.contextmanager
def _server(serve: Serve) -> Iterator[str]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            thread = threading.Thread(target=serve, args=(conn, stop), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        acceptor.join()
        for thread in threads:
            thread.join(timeout=5)
        for conn in conns:
            conn.close()
        listener.close()


def stalled_server() -> contextlib.AbstractContextManager[str]:
    """A server that accepts and never answers; yields its base URL."""
    return _server(_stall)


def trickling_server(interval: float = 3.0) -> contextlib.AbstractContextManager[str]:
    """A server that answers one byte every `interval` seconds; yields its base URL."""
    return _server(_trickle(interval))


@contextlib.contextmanager
def truncating_server(
    upstream: str, cut: Callable[[str], bool] = is_object
) -> Iterator[Truncating]:
    """A proxy for `upstream` that sends the full `Content-Length` of each file `cut`
    selects, then half its body, then closes the connection."""
    found = Truncating("")
    with _server(_truncate(upstream.rstrip("/"), cut, found.truncated)) as url:
        found.url = url
        yield found


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
