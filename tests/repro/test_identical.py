"""Two locked builds of one recipe, as two machines would run them — different
cache, work and output dirs, clocks apart, no SOURCE_DATE_EPOCH — give the same
bytes: the raw image, the compressed image and the manifest."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import eib
from eib.tools.compress import COMPRESSORS

from .conftest import EIB, Locked, eib_env

SAME_BYTES = (".img.gz", ".img.gz.sha256", ".img.sha256", ".manifest.json", ".plan.json",
              ".config.yaml", ".config.ini", ".ostree.txt", ".img.gz.size")


def _build(top: Path, recipe: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in eib_env().items() if k != "SOURCE_DATE_EPOCH"}
    # The build runs in `top`: it must import the eib under test, not an installed one.
    env["PYTHONPATH"] = str(Path(eib.__file__).resolve().parent.parent)
    return subprocess.run(
        [*EIB, "run", str(recipe), "--lock", str(lock), "--dry-run",
         "--cache-dir", str(top / "cache"), "--work-dir", str(top / "work"),
         "--output-dir", str(top / "out")],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=top,
    )


def _remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_two_locked_builds_on_two_machines_are_byte_identical(
    tmp_path: Path, locked: Locked
) -> None:
    outs: list[Path] = []
    try:
        for name in ("first-machine", "second"):
            top = tmp_path / name
            top.mkdir()
            assert "SOURCE_DATE_EPOCH" not in os.environ
            proc = _build(top, locked.recipe, locked.lock)
            assert proc.returncode == 0, proc.stderr[-3000:]
            outs.append(top / "out")
            time.sleep(1.1)  # the second build runs on a later clock second
    finally:
        for name in ("first-machine", "second"):
            _remove(tmp_path / name / "work")

    first, second = outs
    names = sorted(p.name for p in first.iterdir() if p.name != "build.txt")
    assert names == sorted(p.name for p in second.iterdir() if p.name != "build.txt")
    compressed = [n for n in names if n.endswith(".img.gz")]
    assert len(compressed) == 1
    differ = [n for n in names if n.endswith(SAME_BYTES)
              and (first / n).read_bytes() != (second / n).read_bytes()]
    raws = [_raw_digest(out / compressed[0]) for out in outs]
    assert raws[0][1] > 1 << 20
    assert raws[0] == raws[1], "raw images differ"
    assert differ == []
    # SHA256SUMS lists the build log's snapshot too: every other line is the same.
    sums = [[line for line in (out / "SHA256SUMS").read_text().splitlines()
             if not line.endswith("  build.txt")] for out in outs]
    assert sums[0] == sums[1] and len(sums[0]) > 5


def _raw_digest(compressed: Path) -> tuple[str, int]:
    """sha256 and size of the decompressed image, streamed (it is a sparse GiB)."""
    digest, size = hashlib.sha256(), 0
    with subprocess.Popen([*COMPRESSORS["gz"].decompress, str(compressed)],
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    assert proc.returncode == 0
    return digest.hexdigest(), size
