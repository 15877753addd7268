"""The demo HTTP server: any free port, request log, clean stop."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from eib.demo import serve
from eib.errors import UserError


def test_serves_files_records_requests_and_stops(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "ostree").mkdir(parents=True)
    (root / "ostree" / "config").write_text("[core]\n")
    log_file = tmp_path / "requests.log"
    with serve(root, 0, log_file=log_file) as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith("/")
        with urllib.request.urlopen(f"{url}/ostree/config") as resp:
            assert resp.read() == b"[core]\n"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/ostree/nope")
        assert missing.value.code == 404
        assert url.requests == ["/ostree/config", "/ostree/nope"]
        assert url.fetched("/ostree/") == ["/ostree/config"]
        assert url.fetched("/ostree/", status=404) == ["/ostree/nope"]
    assert log_file.read_text().splitlines() == [
        "200 GET /ostree/config",
        "404 GET /ostree/nope",
    ]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/ostree/config", timeout=2)


def test_two_servers_get_their_own_ports_and_logs(tmp_path: Path) -> None:
    with serve(tmp_path, 0) as one, serve(tmp_path, 0) as two:
        assert one != two
        urllib.request.urlopen(f"{one}/").read()
        assert len(one.requests) == 1 and two.requests == []


def test_missing_root_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"), serve(tmp_path / "nope", 0):
        pass
