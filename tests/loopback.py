"""Servers the tests start on 127.0.0.1: free ports, waiting for them, stopping them,
moto as the S3 server, and the demo OS's repos."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def moto_server() -> Iterator[str]:
    """A real S3-compatible server (moto_server) on a free loopback port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextmanager
def demo_server(demo_dir: Path) -> Iterator[int]:
    """`eib demo-os --serve` of `demo_dir` (built there once per machine); yields its port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "eib.cli", "demo-os", "--dir", str(demo_dir), "--serve",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert server.stdout is not None
        for line in server.stdout:  # serving once it prints the URLs
            if f"127.0.0.1:{port}" in line:
                break
        if server.poll() is not None:
            raise RuntimeError(f"the demo server exited with {server.returncode}")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
