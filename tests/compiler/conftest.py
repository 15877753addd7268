"""Helpers for compiler tests: write small recipe trees and run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

EIB = [sys.executable, "-m", "eib.cli"]


def run_eib(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "SOURCE_DATE_EPOCH": "1764322800", **(env or {})}
    return subprocess.run(
        [*EIB, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        check=False,
    )


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write('a.yaml', text) → the path, with the text dedented."""

    def _write(name: str, text: str, mode: int = 0o644) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        path.chmod(mode)
        return path

    return _write


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    """A recipe dir with a few hooks of its own (searched before built-in hooks)."""
    for group, name in (
        ("image", "10-a"),
        ("image", "20-b"),
        ("image", "30-c.chroot"),
        ("content", "10-get"),
    ):
        path = tmp_path / "hooks" / group / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"echo {name}\n")
    (tmp_path / "hooks" / "image" / "20-b").chmod(0o755)
    return tmp_path / "hooks"
