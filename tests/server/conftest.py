"""The warm server under test: the real `eib` program, a private socket dir.

Each test gets its own XDG_RUNTIME_DIR, so its servers are its own; the
fixture stops them (and kills any that does not answer) afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eib.server.address import ServerAddress
from eib.server.client import send_control

ROOT = Path(__file__).resolve().parents[2]
EIB = str(Path(sys.executable).parent / "eib")
DEMO = ROOT / "recipes" / "demo.yaml"
EOS = ROOT / "recipes" / "eos" / "eos.yaml"
EPOCH = "1764322800"


class Eib:
    """Runs `eib` with the server on (or off) in one private runtime dir."""

    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(runtime),
            "EIB_SERVER": "auto",
            "SOURCE_DATE_EPOCH": EPOCH,
        }

    def __call__(
        self, *args: str | Path, server: bool = True, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, **env, "EIB_SERVER": "auto" if server else "off"}
        return subprocess.run(
            [EIB, *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            check=False,
            timeout=120,
        )

    def status(self) -> list[dict[str, Any]]:
        result = self("server", "status", "--json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows

    def current(self) -> dict[str, Any] | None:
        return next((row for row in self.status() if row["current"]), None)

    def start(self) -> dict[str, Any]:
        result = self("server", "start")
        assert result.returncode == 0, result.stderr
        server = self.current()
        assert server is not None
        return server

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.1)

    def sockets(self) -> list[str]:
        directory = self.runtime / "eib"
        return sorted(p.name for p in directory.glob("*.sock")) if directory.exists() else []


@pytest.fixture
def eib(tmp_path: Path) -> Iterator[Eib]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    runner = Eib(runtime)
    yield runner
    pids = _stop_all(runtime / "eib")
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.05)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _stop_all(directory: Path) -> list[int]:
    """Ask every server with a socket in `directory` to stop; their pids."""
    pids = []
    for sock in directory.glob("*.sock") if directory.exists() else []:
        reply = send_control(ServerAddress(str(directory), sock.stem), "stop")
        if reply is not None:
            pids.append(int(reply["pid"]))
    return pids


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
