"""`eib server`: see, start and stop the warm servers of this user.

Servers start on their own at the first quick command; `start` exists for
CI jobs that want the first `eib plan` warm too, `stop` for hosts that want
none lingering, `status` to see what runs and how much it served.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from eib.errors import UserError
from eib.server.address import ServerAddress, runtime_dir, server_address
from eib.server.client import send_control, server_enabled, start_server

START_TIMEOUT = 60.0


def _all_servers() -> list[tuple[ServerAddress, dict[str, Any]]]:
    """Every server of this user that answers, current code or not."""
    directory = runtime_dir()
    if directory is None:
        return []
    found = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".sock"):
            address = ServerAddress(directory, name.removesuffix(".sock"))
            status = send_control(address, "status")
            if status is not None:
                found.append((address, status))
    return found


def run_status(as_json: bool) -> None:
    current = server_address()
    rows = []
    for address, status in _all_servers():
        is_current = current is not None and address.fingerprint == current.fingerprint
        rows.append({**status, "socket": address.socket, "current": is_current})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        return
    if not rows:
        state = "enabled" if server_enabled() else "disabled by EIB_SERVER"
        sys.stdout.write(f"no eib server is running (the server is {state})\n")
        return
    now = time.time()
    sys.stdout.write(f"{'pid':>8}  {'up':>8}  {'served':>6}  code\n")
    for row in rows:
        up = f"{now - row['started']:.0f}s"
        code = "current" if row["current"] else "other code or settings (exits when idle)"
        sys.stdout.write(f"{row['pid']:>8}  {up:>8}  {row['served']:>6}  {code}\n")


def run_start() -> None:
    """Start the server for the current code and wait until it answers."""
    if not server_enabled():
        raise UserError("the eib server is disabled (EIB_SERVER is set to off)")
    address = server_address()
    if address is None:
        raise UserError(
            "no safe directory for the server socket "
            "($XDG_RUNTIME_DIR/eib or /tmp/eib-UID must be this user's, mode 0700)"
        )
    deadline = time.monotonic() + START_TIMEOUT
    status = send_control(address, "status")
    if status is None:
        start_server(address)
    while status is None and time.monotonic() < deadline:
        time.sleep(0.05)
        status = send_control(address, "status")
    if status is None:
        raise UserError(f"the eib server did not start; see {address.log}")
    sys.stdout.write(f"eib server running, pid {status['pid']}\n")


def run_stop() -> None:
    stopped = [
        status["pid"]
        for address, status in _all_servers()
        if send_control(address, "stop") is not None
    ]
    if not stopped:
        sys.stdout.write("no eib server was running\n")
    for pid in stopped:
        sys.stdout.write(f"stopped eib server {pid}\n")
