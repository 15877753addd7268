"""ensure_demo builds once, reuses while inputs hold, and rebuilds the same
commit when they change back."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from eib.demo import DemoPaths, ensure_demo


def test_second_call_is_fast_and_builds_nothing(
    demo: DemoPaths, demo_cache: Path, kernel_deb_dir: Path, kernel_package: str
) -> None:
    stamp = demo_cache / "demo" / "inputs.json"
    before = (stamp.stat().st_mtime_ns, demo.root.stat().st_ino)
    start = time.monotonic()
    again = ensure_demo(demo_cache, deb_dir=kernel_deb_dir, kernel_package=kernel_package)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0
    assert again == demo
    assert (stamp.stat().st_mtime_ns, demo.root.stat().st_ino) == before
    assert not (demo_cache / "demo" / "scratch").exists()
    assert not (demo_cache / "demo" / "serve.new").exists()


@pytest.mark.slow
def test_changed_input_rebuilds_the_same_commit_with_the_same_key(
    demo: DemoPaths, demo_cache: Path, kernel_deb_dir: Path, kernel_package: str, tmp_path: Path
) -> None:
    copy = tmp_path / "cache"
    shutil.copytree(demo_cache / "demo", copy / "demo", symlinks=True)
    stamp_file = copy / "demo" / "inputs.json"
    stamp = json.loads(stamp_file.read_text())
    stamp["builder"] = "0" * 64  # as if the demo builder's code had changed
    stamp_file.write_text(json.dumps(stamp))
    old_inode = (copy / "demo" / "serve").stat().st_ino

    # The Flatpak repo has no part in the OS commit; leave it out to save time.
    rebuilt = ensure_demo(
        copy, deb_dir=kernel_deb_dir, kernel_package=kernel_package, flatpak_builder=False
    )

    assert rebuilt.root.stat().st_ino != old_inode  # really rebuilt
    assert json.loads(stamp_file.read_text())["builder"] != "0" * 64
    assert rebuilt.commit == demo.commit  # reproducible: same inputs, same commit
    assert rebuilt.key_id == demo.key_id  # the throwaway key is kept
    assert rebuilt.gpg_key.read_text() == demo.gpg_key.read_text()
    assert not (copy / "demo" / "scratch").exists()
    assert not rebuilt.has_flatpak and not rebuilt.flatpak_repo.exists()
