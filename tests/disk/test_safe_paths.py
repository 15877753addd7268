"""Disk assembly reads boot files inside the deployment and creates the raw image
without following a symlink swapped in for it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from eib.errors import BuildError
from eib.execute.disk import assemble_image
from eib.model.plan import Plan

from .conftest import deployment_rel
from .helpers import mcopy_out, part_offset, sfdisk_json


def test_efi_loader_behind_an_absolute_symlink_is_not_taken_from_the_host(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    host_secret = tmp_path / "host-secret"
    host_secret.write_bytes(b"the build host's private file\n")
    grub = sysroot / deployment_rel() / "usr/lib/grub/x86_64-efi/grubx64.efi"
    real = grub.read_bytes()
    grub.unlink()
    grub.symlink_to(host_secret)  # an absolute link: /<that path> of the OS, not the host's
    shipped = sysroot / deployment_rel() / "boot/efi/EFI/vendor"
    shipped.mkdir(parents=True)
    (shipped / "shim.efi").symlink_to(host_secret)
    inside = sysroot / deployment_rel() / str(host_secret).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_bytes(real)
    plan = make_plan(compression="gz")
    result = assemble_image(plan, sysroot, tmp_path / "out", tmp_path / "work",
                            tmp_path / "manifest")
    esp = part_offset(sfdisk_json(result.raw_image), 1)
    loader = mcopy_out(result.raw_image, esp, "/EFI/BOOT/BOOTX64.EFI", tmp_path / "loader")
    assert loader == real
    shim = mcopy_out(result.raw_image, esp, "/EFI/vendor/shim.efi", tmp_path / "shim")
    assert shim == real


def test_a_symlink_swapped_in_for_the_raw_image_is_not_followed(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    victim = tmp_path / "host-disk"
    victim.write_bytes(b"a host disk's first sector\n")
    plan = make_plan(compression="gz")
    raw = tmp_path / "work" / plan.outputs.image
    unlink = Path.unlink

    def unlink_then_swap(self: Path, missing_ok: bool = False) -> None:
        # Another process wins the race between eib's unlink and its open.
        unlink(self, missing_ok=missing_ok)
        if self == raw:
            os.symlink(victim, raw)

    monkeypatch.setattr(Path, "unlink", unlink_then_swap)
    with pytest.raises(BuildError, match="something appeared at that name"):
        assemble_image(plan, sysroot, tmp_path / "out", tmp_path / "work",
                       tmp_path / "manifest")
    assert victim.read_bytes() == b"a host disk's first sector\n"
