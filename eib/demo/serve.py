"""Serving the demo repos over HTTP on 127.0.0.1.

An in-process threaded `http.server`: no extra process to clean up, and every
request is recorded on the yielded URL object so a test can assert how much
a build fetched ("a second build pulled no new objects").  Request lines can
also be appended to a log file, for servers whose caller lives in another
process (`eib demo-os --serve`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eib.errors import UserError

log = logging.getLogger("eib.demo.serve")


@dataclass(frozen=True)
class Request:
    """One served request."""

    method: str
    path: str
    status: int


class ServedURL(str):
    """The base URL (`http://127.0.0.1:PORT`, no trailing slash), carrying the
    requests served so far."""

    log: list[Request]
    log_file: Path | None

    @property
    def requests(self) -> list[str]:
        """Paths of every request so far, in order."""
        return [r.path for r in self.log]

    def fetched(self, prefix: str = "/", status: int = 200) -> list[str]:
        """Paths under `prefix` served with `status` (e.g. objects pulled)."""
        return [r.path for r in self.log if r.path.startswith(prefix) and r.status == status]


class _Handler(SimpleHTTPRequestHandler):
    served: ServedURL
    lock: threading.Lock

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if str(code).isdigit() else 0
        record = Request(self.command or "", self.path, status)
        with self.lock:
            self.served.log.append(record)
            if self.served.log_file is not None:
                with open(self.served.log_file, "a") as out:
                    out.write(f"{record.status} {record.method} {record.path}\n")
        log.debug("%s %s %s", record.status, record.method, record.path)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded by log_request; keep stderr quiet."""


@contextmanager
def serve(root: Path, port: int = 0, *, log_file: Path | None = None) -> Iterator[ServedURL]:
    """Serve `root` on 127.0.0.1:`port` (0: any free port) until the block
    ends; yields the base URL."""
    if not root.is_dir():
        raise UserError(f"{root}: no such directory to serve")

    class Handler(_Handler):
        lock = threading.Lock()

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=str(root)))
    except OSError as err:
        raise UserError(f"cannot serve on 127.0.0.1:{port}: {err.strerror}") from err
    server.daemon_threads = True
    host, bound_port = server.server_address[:2]
    served = ServedURL(f"http://{host!s}:{bound_port}")
    served.log = []
    served.log_file = log_file
    Handler.served = served
    thread = threading.Thread(target=server.serve_forever, name="eib-demo-http", daemon=True)
    thread.start()
    log.info("serving %s at %s", root, served)
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
