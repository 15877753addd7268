"""`eib run --progress json`: one JSON object per event, progress for the long steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eib.paths import RECIPES_DIR
from tests.loopback import free_port

EIB = [sys.executable, "-m", "eib.cli"]
CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache")) / "run-cache"


def eib(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=900, check=False)


def test_bad_progress_mode_is_bad_input(tmp_path: Path) -> None:
    proc = eib("run", RECIPES_DIR / "demo.yaml", "--progress", "fancy", "--work-dir",
               tmp_path / "work", "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 2
    assert "--progress" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_json_progress_events_for_a_demo_build(tmp_path: Path) -> None:
    work = tmp_path / "work"
    # A fresh OSTree cache repo (so the pull has objects to fetch) beside the
    # shared, already built demo OS.
    cache = tmp_path / "cache"
    cache.mkdir()
    (CACHE / "demo").mkdir(parents=True, exist_ok=True)
    (cache / "demo").symlink_to(CACHE / "demo")
    try:
        proc = eib("run", RECIPES_DIR / "demo.yaml", "--set", f"demo.port={free_port()}",
                   "--cache-dir", cache, "--work-dir", work, "--no-cache", "--progress", "json")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    finally:
        subprocess.run(["chattr", "-R", "-f", "-i", str(tmp_path)], check=False)
        shutil.rmtree(work, ignore_errors=True)
        (cache / "demo").unlink()
        shutil.rmtree(cache, ignore_errors=True)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all({"event", "stage", "step", "elapsed"} <= e.keys() for e in events)
    stages = [e["stage"] for e in events if e["event"] == "stage_done"]
    assert stages == ["ostree", "image", "manifest", "publish"]
    progress = {e["step"]: e for e in events if e["event"] == "progress" and e["final"]}
    for step in ("ostree pull", "flatpak install", "populate root fs", "compress and sign"):
        assert step in progress, sorted(progress)
        last = progress[step]
        assert last["done"] > 0 and last["unit"] == "B" and "rate" in last
    root = progress["populate root fs"]
    assert root["total"] > 0 and root["stage"] == "image"
    assert 0 < root["done"] <= root["total"]
    assert events[-1]["event"] == "message" and events[-1]["text"].startswith("built ")
    elapsed = [e["elapsed"] for e in events]
    assert elapsed == sorted(elapsed)
