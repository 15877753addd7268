"""Misbehaving servers on 127.0.0.1 for fault tests.

`stalled_server` accepts connections and never answers; `trickling_server`
answers with a valid header and then one body byte every `interval`
seconds.  Both keep their sockets open until stopped, like a broken proxy
or an overloaded mirror would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

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


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
