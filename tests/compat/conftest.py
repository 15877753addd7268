"""Shared helpers for the legacy compatibility tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

# The executor tests' tiny OS, served repos and build dirs, for builds running legacy hooks.
from execute.conftest import build, served, signing  # noqa: F401

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "legacy-tree"
EPOCH = "1700000000"  # 2023-11-14 22:13:20 UTC
BUILD_VERSION = "231114-221320"

TreeWriter = Callable[[dict[str, str]], Path]


@pytest.fixture(autouse=True)
def _fixed_build_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


@pytest.fixture
def write_tree(tmp_path: Path) -> TreeWriter:
    """Write {relative path: INI text} below tmp_path/src and return src/config."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "src"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "sysconf").mkdir(parents=True, exist_ok=True)
        return root / "config"

    return write
