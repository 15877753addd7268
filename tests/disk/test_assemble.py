"""Disk images assembled from a synthetic sysroot, checked with the real tools."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from eib.errors import BuildError
from eib.execute.disk import ImageResult, assemble_image
from eib.execute.disk_layout import DPS_ROOT_GUID, ESP_GUID, MiB
from eib.model.plan import Plan

from .conftest import COMMIT, OS_NAME, deployment_rel
from .helpers import (
    debugfs,
    gpg_verify,
    mcopy_out,
    mdir,
    part_offset,
    sfdisk_json,
    sh,
    sha256sum_check,
)

ROOT_SHARE = f"/{deployment_rel()}/usr/share"


def assemble(plan: Plan, sysroot: Path, tmp_path: Path, **kw: object) -> ImageResult:
    return assemble_image(
        plan,
        sysroot,
        tmp_path / "out",
        tmp_path / "work",
        tmp_path / "manifest",
        **kw,  # type: ignore[arg-type]
    )


def test_gpt_amd64_signed_image(
    tmp_path: Path,
    sysroot: Path,
    make_plan: Callable[..., Plan],
    gpg_key: tuple[Path, str],
    grub_usr_lib: Path,
) -> None:
    home, fpr = gpg_key
    plan = make_plan(compression="zstd", signing_keyid=fpr, gpg_homedir=str(home))
    result = assemble(plan, sysroot, tmp_path)
    raw, out = result.raw_image, tmp_path / "out"
    base = plan.outputs.outversion

    # Only the compressed image is published; the raw one stays in the work dir.
    assert raw.parent == tmp_path / "work" and not (out / f"{base}.img").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            f"{base}.img.zst",
            f"{base}.img.zst.asc",
            f"{base}.img.zst.sha256",
            f"{base}.img.zst.size",
            f"{base}.img.asc",
            f"{base}.img.sha256",
        ]
    )

    table = sfdisk_json(raw)
    assert table["label"] == "gpt"
    esp, bios, root = table["partitions"]
    assert (esp["type"], esp["start"], esp["size"]) == (ESP_GUID, 2048, 62 * MiB // 512)
    assert (bios["type"], bios["size"]) == ("21686148-6449-6E6F-744E-656564454649", 2048)
    assert root["type"] == DPS_ROOT_GUID["amd64"] and root["attrs"] == "GUID:55"
    assert root["start"] == bios["start"] + bios["size"]

    # Root file system: label, 1 % reserved, clean, content, hard links, xattrs, immutable.
    offset = part_offset(table, 3)
    sh("e2fsck", "-fn", f"{raw}?offset={offset}")
    header = sh("dumpe2fs", "-h", f"{raw}?offset={offset}")
    assert "Filesystem volume name:   ostree" in header
    blocks = int(header.split("Block count:")[1].split()[0])
    reserved = int(header.split("Reserved block count:")[1].split()[0])
    assert reserved == blocks // 100
    deploy = f"/{deployment_rel()}"
    assert debugfs(raw, offset, f"cat {deploy}/usr/bin/hello") == "#!/bin/sh\necho hello\n"
    assert "Links: 2" in debugfs(raw, offset, f"stat {deploy}/usr/bin/hello")
    assert inode_of(raw, offset, f"{deploy}/usr/bin", "hello") == inode_of(
        raw, offset, "/ostree/repo/objects/ab", "cdef.file"
    )
    assert "kept" in debugfs(raw, offset, f"ea_get {deploy}/usr/bin/hello user.eib-test")
    flags = debugfs(raw, offset, f"stat {deploy}").split("Flags: ")[1].split()[0]
    assert int(flags, 16) & 0x10, "deployment lost its immutable bit"
    assert "Disk Test OS" in debugfs(raw, offset, f"cat {deploy}/usr/lib/os-release")
    grub_cfg = debugfs(raw, offset, "cat /boot/grub/grub.cfg")
    assert "menuentry 'Disk Test OS 1.0 (ostree:0)'" in grub_cfg
    assert "linux /boot/ostree/eos-" in grub_cfg and "root=LABEL=ostree rw ostree=" in grub_cfg
    assert "initrd /boot/ostree/eos-" in grub_cfg

    # ESP: label EFI, the deployment's GRUB EFI image as the fallback loader.
    esp_offset = part_offset(table, 1)
    assert "BOOTX64.EFI" in mdir(raw, esp_offset, "/EFI/BOOT")
    efi = mcopy_out(raw, esp_offset, "/EFI/BOOT/BOOTX64.EFI", tmp_path / "bootx64.efi")
    assert efi == (grub_usr_lib / "grub" / "x86_64-efi" / "grubx64.efi").read_bytes()
    assert "EFI" in sh("mlabel", "-s", "-i", f"{raw}@@{esp_offset}", "::")

    # BIOS: GRUB's boot sector points at the core image in the BIOS boot partition.
    data = raw.read_bytes()[: (bios["start"] + 4) * 512]
    assert b"GRUB" in data[:440] and data[510:512] == b"\x55\xaa"
    assert int.from_bytes(data[0x5C:0x64], "little") == bios["start"]
    core = (grub_usr_lib / "grub" / "i386-pc" / "core.img").read_bytes()
    at = bios["start"] * 512
    assert data[at + 512 : at + 1024] == core[512:1024]
    assert int.from_bytes(data[at + 500 : at + 508], "little") == bios["start"] + 1

    # Checksums and signatures of the raw and compressed images.
    sha256sum_check(out / f"{base}.img.zst.sha256", out)
    sha256sum_check(out / f"{base}.img.sha256", raw.parent)
    gpg_verify(home, out / f"{base}.img.zst.asc", out / f"{base}.img.zst")
    gpg_verify(home, out / f"{base}.img.asc", raw)
    assert (out / f"{base}.img.zst.size").read_text() == f"{raw.stat().st_size}\n"
    unpacked = tmp_path / "unpacked.img"
    sh("zstd", "-dq", out / f"{base}.img.zst", "-o", unpacked)
    assert unpacked.read_bytes() == raw.read_bytes()

    # The manifest fragment names every file.
    manifest = json.loads((tmp_path / "manifest" / "images.json").read_text())
    full = manifest["images"]["full"]
    assert full["file"] == f"{base}.img.zst" and full["compression_type"] == "zstd"
    assert full["compressed_size"] == (out / f"{base}.img.zst").stat().st_size
    assert full["extracted_size"] == raw.stat().st_size
    assert full["signature"] == f"{base}.img.zst.asc"
    assert full["checksum"] == f"{base}.img.zst.sha256"
    assert full["extracted_signature"] == f"{base}.img.asc"
    assert full["extracted_sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest()
    assert {p.name for p in result.files} == {p.name for p in out.iterdir()}


def test_dos_layout_with_resize_marker(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    plan = make_plan(partition_table="dos", compression="gz", rootfs_resize=True)
    result = assemble(plan, sysroot, tmp_path)
    raw = result.raw_image
    table = sfdisk_json(raw)
    assert table["label"] == "dos"
    # The marker shows as an empty 4th partition of type 0xdd.
    assert [(p["node"][-1], p["type"]) for p in table["partitions"]] == [
        ("1", "ef"),
        ("2", "83"),
        ("4", "dd"),
    ]
    assert table["partitions"][2]["size"] == 0
    data = raw.read_bytes()[: 2048 * 512]
    assert data[498] == 0xDD
    # No BIOS boot partition on dos: GRUB's core image sits right after the MBR.
    assert int.from_bytes(data[0x5C:0x64], "little") == 1 and b"GRUB" in data[:440]
    offset = part_offset(table, 2)
    sh("e2fsck", "-fn", f"{raw}?offset={offset}")
    assert "ostree" in debugfs(raw, offset, "ls /")
    sha256sum_check(tmp_path / "out" / f"{plan.outputs.outversion}.img.gz.sha256", tmp_path / "out")
    sh("gzip", "-t", tmp_path / "out" / f"{plan.outputs.outversion}.img.gz")


def test_dos_without_resize_has_no_marker(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    plan = make_plan(partition_table="dos", rootfs_resize=False)
    raw = assemble(plan, sysroot, tmp_path).raw_image
    assert raw.read_bytes()[498] == 0


def test_arm64_pinebookpro_layout(tmp_path: Path, make_plan: Callable[..., Plan]) -> None:
    from .conftest import build_sysroot

    sysroot = build_sysroot(tmp_path, None)
    uboot = sysroot / deployment_rel() / "usr" / "lib" / "u-boot" / "pinebookpro"
    uboot.mkdir(parents=True)
    (uboot / "boot.scr").write_bytes(b"u-boot script")
    plan = make_plan({"arch": "arm64", "platform": "pinebookpro"}, compression="xz")
    result = assemble(plan, sysroot, tmp_path)
    raw = result.raw_image
    table = sfdisk_json(raw)
    assert len(table["partitions"]) == 1
    root = table["partitions"][0]
    assert root["start"] == 32768 and root["type"] == DPS_ROOT_GUID["arm64"]
    assert root["attrs"] == "GUID:55"
    offset = part_offset(table, 1)
    sh("e2fsck", "-fn", f"{raw}?offset={offset}")
    assert (
        "64bit"
        not in sh("dumpe2fs", "-h", f"{raw}?offset={offset}").split("features:")[1].split("\n")[0]
    )
    assert debugfs(raw, offset, "cat /boot/boot.scr") == "u-boot script"
    # No GRUB in an arm64 deployment: no grub.cfg, no boot code.
    assert "not found" in sh_err(raw, offset, "stat /boot/grub/grub.cfg")
    assert b"GRUB" not in raw.read_bytes()[:512]
    sh("xz", "-t", tmp_path / "out" / f"{plan.outputs.outversion}.img.xz")


def inode_of(raw: Path, offset: int, directory: str, name: str) -> str:
    for line in debugfs(raw, offset, f"ls -p {directory}").splitlines():
        fields = line.split("/")
        if len(fields) > 5 and fields[5] == name:
            return fields[1]
    raise AssertionError(f"{name} not in {directory}")


def sh_err(raw: Path, offset: int, request: str) -> str:
    import subprocess

    return subprocess.run(
        ["debugfs", "-R", request, f"{raw}?offset={offset}"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr


def test_max_size_fails_before_writing(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    plan = make_plan(max_size=20 * MiB)
    with pytest.raises(BuildError) as err:
        assemble(plan, sysroot, tmp_path)
    message = str(err.value)
    assert "image.max_size 20971520 bytes" in message
    size = int(message.split("would be ")[1].split()[0])
    assert size > 20 * MiB
    assert not any((tmp_path / "work").iterdir()) and not any((tmp_path / "out").iterdir())


def test_sdboot_esp_holds_loader_entries_and_kernels(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    efi = sysroot / deployment_rel() / "usr" / "lib" / "systemd" / "boot" / "efi"
    efi.mkdir(parents=True)
    (efi / "systemd-bootx64.efi").write_bytes(b"MZ systemd-boot")
    plan = make_plan(sdboot=True)
    raw = assemble(plan, sysroot, tmp_path).raw_image
    table = sfdisk_json(raw)
    assert table["partitions"][0]["size"] == 500 * MiB // 512
    offset = part_offset(table, 1)
    assert mcopy_out(raw, offset, "/EFI/BOOT/BOOTX64.EFI", tmp_path / "b.efi") == b"MZ systemd-boot"
    entry = mcopy_out(raw, offset, f"/loader/entries/ostree-1-{OS_NAME}.conf", tmp_path / "e.conf")
    assert b"linux /ostree/eos-" in entry and b"options root=LABEL=ostree" in entry
    listing = mdir(raw, offset, "/ostree")
    assert "eos-" in listing
    kernel_dir = listing.strip().splitlines()[0].strip().removeprefix("::").rstrip("/")
    assert "vmlinuz-6.1.0-test" in mdir(raw, offset, kernel_dir)


def test_qcow2_iso_and_boot_zip(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan], gpg_key: tuple[Path, str]
) -> None:
    home, fpr = gpg_key
    plan = make_plan(
        qcow2=True,
        qcow2_extra=64 * MiB,
        iso=True,
        boot_zip=True,
        signing_keyid=fpr,
        gpg_homedir=str(home),
    )
    result = assemble(plan, sysroot, tmp_path)
    out, base = tmp_path / "out", plan.outputs.outversion
    qcow2 = out / f"{base}.qcow2"
    info = json.loads(sh("qemu-img", "info", "--output=json", qcow2))
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == result.raw_image.stat().st_size + 64 * MiB
    listing = sh("xorriso", "-indev", out / f"{base}.iso", "-find", "/", "-type", "f")
    assert f"/images/{base}.img.gz'" in listing and "/EFI/BOOT/BOOTX64.EFI" in listing
    with zipfile.ZipFile(out / f"{base}.boot.zip") as archive:
        names = archive.namelist()
    assert "EFI/BOOT/BOOTX64.EFI" in names and "grub/grub.cfg" in names
    assert "grub/i386-pc/core.img" in names
    for name in (f"{base}.qcow2", f"{base}.iso", f"{base}.boot.zip"):
        gpg_verify(home, out / f"{name}.asc", out / name)
        sha256sum_check(out / f"{name}.sha256", out)
    manifest = json.loads((tmp_path / "manifest" / "images.json").read_text())["images"]
    assert {manifest[k]["file"] for k in ("qcow2", "iso", "boot")} == {
        f"{base}.qcow2",
        f"{base}.iso",
        f"{base}.boot.zip",
    }
    assert all(manifest[k]["signature"] == manifest[k]["file"] + ".asc" for k in manifest)


def test_seeded_builds_are_byte_identical(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan]
) -> None:
    plan = make_plan()
    one = assemble_image(
        plan,
        sysroot,
        tmp_path / "o1",
        tmp_path / "w1",
        tmp_path / "m1",
        seed=plan.digest,
        source_date_epoch=1700000000,
    )
    two = assemble_image(
        plan,
        sysroot,
        tmp_path / "o2",
        tmp_path / "w2",
        tmp_path / "m2",
        seed=plan.digest,
        source_date_epoch=1700000000,
    )
    digest = [hashlib.sha256(r.raw_image.read_bytes()).hexdigest() for r in (one, two)]
    assert digest[0] == digest[1]
    table = sfdisk_json(one.raw_image)
    assert table["id"] == sfdisk_json(two.raw_image)["id"]
    assert os.path.getsize(one.raw_image) == os.path.getsize(two.raw_image)
    assert COMMIT in debugfs(
        one.raw_image, part_offset(table, 3), f"ls /ostree/deploy/{OS_NAME}/deploy"
    )


def test_unknown_signing_key_fails_before_assembly(
    tmp_path: Path, sysroot: Path, make_plan: Callable[..., Plan], gpg_key: tuple[Path, str]
) -> None:
    home, _fpr = gpg_key
    plan = make_plan(signing_keyid="0123456789ABCDEF", gpg_homedir=str(home))
    with pytest.raises(BuildError, match="signing key '0123456789ABCDEF' is not in the secret"):
        assemble(plan, sysroot, tmp_path)
    assert not any((tmp_path / "work").iterdir())
