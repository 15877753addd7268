"""`eib inspect` on assembled images, through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from eib.execute.disk import assemble_image
from eib.execute.disk_layout import DPS_ROOT_GUID, ESP_GUID
from eib.model.plan import Plan

from .conftest import COMMIT, OS_NAME


def eib(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eib.cli", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


@pytest.fixture
def image(tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]) -> tuple[Plan, Path]:
    plan = make_plan(compression="xz")
    assemble_image(plan, sysroot, tmp_path / "out", tmp_path / "work", tmp_path / "manifest")
    return plan, tmp_path / "out" / f"{plan.outputs.image}.xz"


def test_inspect_json_of_compressed_image(image: tuple[Plan, Path]) -> None:
    _plan, compressed = image
    proc = eib("inspect", compressed, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["partition_table"]["label"] == "gpt"
    esp, bios, root = data["partitions"]
    assert (esp["type"], esp["role"], esp["filesystem"]["label"]) == (ESP_GUID, "esp", "EFI")
    assert "/EFI/BOOT/BOOTX64.EFI" in esp["filesystem"]["files"]
    assert bios["role"] == "bios" and bios["filesystem"] is None
    assert root["type"] == DPS_ROOT_GUID["amd64"] and root["attrs"] == "GUID:55"
    assert root["filesystem"]["type"] == "ext4" and root["filesystem"]["label"] == "ostree"
    assert data["bios_bootloader"] == "grub"
    [deployment] = data["deployments"]
    assert (deployment["os"], deployment["commit"], deployment["serial"]) == (OS_NAME, COMMIT, 0)
    assert deployment["immutable"] is True
    assert deployment["os_release"]["PRETTY_NAME"] == "Disk Test OS 1.0"
    [entry] = data["boot_entries"]
    assert entry["title"] == "Disk Test OS 1.0 (ostree:0)"
    assert entry["options"].startswith("root=LABEL=ostree rw ostree=/ostree/boot.1/eos/")


def test_inspect_table_output(image: tuple[Plan, Path], tmp_path: Path) -> None:
    plan, _compressed = image
    proc = eib("inspect", tmp_path / "work" / plan.outputs.image)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in (
        "gpt partition table",
        "BIOS boot code: GRUB",
        "Partitions",
        ESP_GUID,
        "ostree",
        "/EFI/BOOT/BOOTX64.EFI",
        "Deployments",
        COMMIT,
        "Disk Test OS 1.0",
        "Boot entries",
        f"ostree-1-{OS_NAME}.conf",
    ):
        assert text in out, f"{text!r} missing from:\n{out}"


def test_inspect_missing_image_is_a_user_error(tmp_path: Path) -> None:
    proc = eib("inspect", tmp_path / "nope.img")
    assert proc.returncode == 2
    assert "nope.img: no such image file" in proc.stderr and "Traceback" not in proc.stderr
