"""`eib demo-os`: what a user sees."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

from eib.demo import OSTREE_REF, DemoPaths, serve


def eib(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["eib", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_demo_os_prints_what_it_made(demo: DemoPaths) -> None:
    proc = eib("demo-os", "--dir", str(demo.root.parent))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"ref:             {OSTREE_REF}" in out
    assert f"commit:          {demo.commit}" in out
    assert f"key fingerprint: {demo.key_id}" in out
    assert f"public key:      {demo.gpg_key}" in out
    assert f"kernel:          {demo.kernel_version}" in out


def test_demo_os_defaults_to_eib_cache_dir(demo: DemoPaths, demo_cache: Path) -> None:
    proc = eib("demo-os", env={"EIB_CACHE_DIR": str(demo_cache)})
    assert proc.returncode == 0, proc.stderr
    assert f"serve root:      {demo_cache / 'demo' / 'serve'}" in proc.stdout
    assert demo.commit in proc.stdout


def test_demo_os_serve_until_interrupted(demo: DemoPaths) -> None:
    proc = subprocess.Popen(
        ["eib", "demo-os", "--dir", str(demo.root.parent), "--serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            match = re.search(r"ostree url\s+(http://127\.0\.0\.1:\d+)/ostree", line)
            if match:
                url = match.group(1)
                break
        assert url is not None
        with urllib.request.urlopen(f"{url}/ostree/refs/heads/{OSTREE_REF}") as resp:
            assert resp.read().decode().strip() == demo.commit
        with urllib.request.urlopen(f"{url}/keys/eib-demo.asc") as resp:
            assert b"BEGIN PGP PUBLIC KEY BLOCK" in resp.read()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in rest
    assert "Traceback" not in err


def test_unusable_dir_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = eib("demo-os", "--dir", str(blocker / "demo"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("eib: error: --dir: cannot use ")
    assert "Traceback" not in proc.stderr


def test_serve_port_in_use_is_a_user_error(demo: DemoPaths) -> None:
    with serve(demo.root, 0) as url:
        port = url.rsplit(":", 1)[1]
        proc = eib("demo-os", "--dir", str(demo.root.parent), "--serve", "--port", port)
    assert proc.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
