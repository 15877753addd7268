"""The demo OS, assembled into disk images, boots in QEMU through UEFI and BIOS."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eib.execute.disk import assemble_image
from eib.model.plan import Plan

from .conftest import deploy_demo, make_mutable

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu"),
]


def eib(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eib.cli", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_image(tmp_path_factory: pytest.TempPathFactory, demo_paths: Any) -> Iterator[Path]:
    """The demo deployment assembled into a zstd-compressed GPT image."""
    from eib.demo import OS_NAME

    from .conftest import compile_plan

    base = tmp_path_factory.mktemp("demo-image")
    sysroot = deploy_demo(demo_paths, base)
    plan = compile_plan(base, {"arch": "amd64"}, {"extra_space": 16 << 20, "compression": "zstd"})
    plan = plan.model_copy(update={"ostree": plan.ostree.model_copy(update={"os": OS_NAME})})
    assemble_image(plan, sysroot, base / "out", base / "work", base / "manifest")
    yield base / "out" / plan.outputs.compressed
    make_mutable(base)


@pytest.mark.slow
@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_demo_image_boots(demo_image: Path, firmware: str, tmp_path: Path) -> None:
    from eib.demo import READY_MARKER

    log = tmp_path / f"{firmware}.log"
    proc = eib("boot", demo_image, "--firmware", firmware, "--timeout", "150", "--log", log)
    assert proc.returncode == 0, proc.stderr
    assert f"booted ({firmware})" in proc.stdout
    console = log.read_text(errors="replace")
    assert READY_MARKER in console and "EXT4-fs (vda3): mounted" in console


@pytest.mark.slow
def test_boot_failure_shows_console_tail(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    """The synthetic image's fake kernel cannot boot: GRUB's complaint is shown."""
    plan = make_plan()
    result = assemble_image(plan, sysroot, tmp_path / "out", tmp_path / "work", tmp_path / "m")
    log = tmp_path / "console.log"
    proc = eib("boot", result.raw_image, "--firmware", "bios", "--timeout", "10", "--log", log)
    assert proc.returncode == 1
    assert "boot failed (bios)" in proc.stderr
    assert "console tail" in proc.stderr and "GNU GRUB" in log.read_text(errors="replace")
    assert "you need to load the kernel first" in proc.stderr
