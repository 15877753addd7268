"""`eib run` through the stage cache: a no-op rebuild reuses every stage, and a
changed image hook re-runs the image stage onward, with the reason named."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Locked, eib


def _remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def _run(recipe: Path, lock: Path, top: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return eib("run", recipe, "--lock", lock, "--dry-run", "--explain-cache",
               "--cache-dir", top / "cache", "--work-dir", top / "work", *extra, timeout=600)


def _cache_lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    lines = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        _, sep, rest = line.partition("cache: ")
        if sep and ":" in rest:
            stage, _, why = rest.partition(":")
            lines[stage.strip()] = why.strip()
    return lines


@pytest.mark.slow
def test_rebuilds_reuse_stages_and_explain_a_hook_change(tmp_path: Path, locked: Locked) -> None:
    recipe_dir = tmp_path / "recipe"
    shutil.copytree(locked.recipe.parent, recipe_dir)
    recipe, lock = recipe_dir / "recipe.yaml", recipe_dir / "recipe.lock"
    try:
        first = _run(recipe, lock, tmp_path)
        assert first.returncode == 0, first.stderr[-2000:]
        out = tmp_path / "work" / "out"
        manifest = json.loads(next(out.glob("*.manifest.json")).read_text())
        image = next(out.glob("*.img.*[!6]"))
        first_bytes = image.read_bytes()

        second = _run(recipe, lock, tmp_path)
        assert second.returncode == 0, second.stderr[-2000:]
        reasons = _cache_lines(second)
        assert reasons["ostree"].startswith("hit")
        assert reasons["image"].startswith("hit")
        assert reasons["manifest"].startswith("hit")
        assert "image: reused from the stage cache" in second.stdout + second.stderr
        assert image.read_bytes() == first_bytes  # the restored outputs are the stored ones
        assert json.loads(next(out.glob("*.manifest.json")).read_text()) == manifest

        (recipe_dir / "hooks" / "image" / "50-hello").write_text("echo changed\n")
        third = _run(recipe, lock, tmp_path)
        assert third.returncode == 0, third.stderr[-2000:]
        reasons = _cache_lines(third)
        assert reasons["ostree"].startswith("hit")
        assert reasons["image"].startswith("miss")
        assert "hooks.image[0].sha256 changed" in reasons["image"]
        assert "50-hello" in reasons["image"]
        assert reasons["manifest"].startswith("miss")
        text = third.stdout + third.stderr
        assert "image: reused" not in text and "manifest: reused" not in text
        build_log = (out / "build.txt").read_text()
        assert "hook image/50-hello" in build_log or "50-hello" in build_log
    finally:
        _remove(tmp_path / "work")
