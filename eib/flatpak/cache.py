"""A caching pull-through server for Flatpak remotes, kept between builds.

During an install every remote's URL points at this server on 127.0.0.1,
which forwards to the real remote. Content-addressed files (OSTree objects,
static deltas, summary shards) are kept in the cache dir and served from there
next time, so a second build downloads only what changed; mutable files
(summary, signatures, refs, config) always come from the remote. Flatpak
itself still verifies every signature and checksum, so the cache cannot
smuggle content in, and Flatpak does the install exactly as it would online.
Objects and summary shards are also checked against their names before they
are stored and each time they are served (`flatpak_objects`): a bad entry is
dropped and fetched again rather than failing every later build. Static
deltas are not named by their content; OSTree checks them on use.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import threading
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from eib.errors import BuildError
from eib.flatpak import objects as objects
from eib.network import NetworkLimits, copy_limited

log = logging.getLogger("eib.flatpak")

# Paths whose content never changes for a given name. Detached commit
# metadata (`.commitmeta`, the signatures) can grow and is always fetched.
IMMUTABLE_PREFIXES = ("objects/", "deltas/", "summaries/")
MUTABLE_SUFFIXES = (".commitmeta",)
CHUNK = 1 << 20


class CacheStats:
    """What the cache saved: files served from disk and files fetched upstream."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits = 0
        self.fetched = 0
        self.fetched_bytes = 0
        self.passed = 0
        self.dropped = 0

    def count(self, kind: str, size: int = 0) -> None:
        with self.lock:
            if kind == "hit":
                self.hits += 1
            elif kind == "dropped":
                self.dropped += 1
            elif kind == "fetch":
                self.fetched += 1
                self.fetched_bytes += size
            else:
                self.passed += 1


class FlatpakCache:
    """`http://127.0.0.1:PORT/<remote>/…` → `<upstream>/…`, immutable files cached on disk."""

    def __init__(
        self, cache_dir: Path, upstreams: dict[str, str], limits: NetworkLimits | None = None
    ) -> None:
        self.cache_dir = cache_dir
        # A stalled upstream ends the request with 502 (Flatpak reports the
        # failure) instead of holding the install forever.
        self.limits = limits or NetworkLimits.from_env()
        self.upstreams = {name: url.rstrip("/") for name, url in upstreams.items()}
        self.stats = CacheStats()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url_for(self, remote: str) -> str:
        if self._server is None:
            raise RuntimeError("cache server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{remote}"

    def cached_path(self, remote: str, path: str) -> Path:
        """Objects are shared by all remotes (verified by checksum); the rest is per URL."""
        if path.startswith("objects/"):
            return self.cache_dir / path
        upstream = hashlib.sha256(self.upstreams[remote].encode()).hexdigest()[:16]
        return self.cache_dir / "remotes" / upstream / path

    def __enter__(self) -> FlatpakCache:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return  # one summary line at the end instead of one per file

            def do_GET(self) -> None:
                cache.handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        s = self.stats
        log.info(
            "flatpak cache: %d files from cache, %d fetched (%d bytes), %d passed through, "
            "%d bad entries dropped",
            s.hits, s.fetched, s.fetched_bytes, s.passed, s.dropped,
        )

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        remote, _, path = unquote(req.path.split("?", 1)[0]).lstrip("/").partition("/")
        if remote not in self.upstreams or ".." in path.split("/"):
            self._send_status(req, HTTPStatus.NOT_FOUND)
            return
        immutable = path.startswith(IMMUTABLE_PREFIXES) and not path.endswith(MUTABLE_SUFFIXES)
        if immutable:
            cached = self.cached_path(remote, path)
            if cached.is_file():
                if not objects.verifiable(path) or objects.verify(path, cached):
                    self.stats.count("hit")
                    self._send_file(req, cached)
                    return
                log.warning("cache: %s does not match its checksum; fetching it again", path)
                self.stats.count("dropped")
                cached.unlink(missing_ok=True)
        url = f"{self.upstreams[remote]}/{path}"
        deadline = self.limits.start()
        try:
            upstream = urllib.request.urlopen(url, timeout=self.limits.socket_timeout)
        except urllib.error.HTTPError as err:
            self._send_status(req, HTTPStatus(err.code))
            return
        except urllib.error.URLError as err:
            # A local (file://) remote: a missing file is a 404, as OSTree expects.
            status = HTTPStatus.NOT_FOUND
            if not isinstance(err.reason, FileNotFoundError):
                log.warning("cache: cannot fetch %s: %s", url, err)
                status = HTTPStatus.BAD_GATEWAY
            self._send_status(req, status)
            return
        except OSError as err:
            log.warning("cache: cannot fetch %s: %s", url, err)
            self._send_status(req, HTTPStatus.BAD_GATEWAY)
            return
        cached = self.cached_path(remote, path)
        tmp = cached.with_name(f".{cached.name}.{threading.get_ident()}.tmp")
        try:
            with upstream:
                if not immutable:
                    self.stats.count("pass")
                    body = io.BytesIO()
                    copy_limited(upstream, body, deadline, f"fetching {url}")
                    self._send_bytes(req, body.getvalue())
                    return
                cached.parent.mkdir(parents=True, exist_ok=True)
                with tmp.open("wb") as out:
                    copy_limited(upstream, out, deadline, f"fetching {url}")
        except (BuildError, OSError) as err:
            tmp.unlink(missing_ok=True)
            log.warning("cache: %s", err)
            self._send_status(req, HTTPStatus.BAD_GATEWAY)
            return
        if objects.verifiable(path) and not objects.verify(path, tmp):
            tmp.unlink(missing_ok=True)
            log.warning("cache: %s from %s does not match its checksum", path, url)
            self._send_status(req, HTTPStatus.BAD_GATEWAY)
            return
        os.replace(tmp, cached)
        self.stats.count("fetch", cached.stat().st_size)
        self._send_file(req, cached)

    @staticmethod
    def _send_status(req: BaseHTTPRequestHandler, status: HTTPStatus) -> None:
        req.send_response(status)
        req.send_header("Content-Length", "0")
        req.end_headers()

    @staticmethod
    def _send_bytes(req: BaseHTTPRequestHandler, data: bytes) -> None:
        req.send_response(HTTPStatus.OK)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    @staticmethod
    def _send_file(req: BaseHTTPRequestHandler, path: Path) -> None:
        req.send_response(HTTPStatus.OK)
        req.send_header("Content-Length", str(path.stat().st_size))
        req.end_headers()
        with path.open("rb") as src:
            shutil.copyfileobj(src, req.wfile, CHUNK)
