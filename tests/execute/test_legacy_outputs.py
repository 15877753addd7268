"""The files the legacy builder published beside its images, from real builds of
the tiny OS: ostree.txt, config.ini, `.size` files, SHA256SUMS with its
armoured SHA256SUMS.gpg, the manifest's legacy keys and the image version
attribute; and the `vm_image` OVF zip (amd64 only, a plan warning elsewhere)."""

from __future__ import annotations

import configparser
import gzip
import hashlib
import json
import os
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from eib.tools import ext4

from .conftest import (
    EIB,
    REF,
    Build,
    Served,
    Signing,
    _remove,
    eib_env,
    write_recipe,
)
from .test_legacy_secrets import PASSWORD, TOKEN, legacy_tree

VERSION_XATTR = "user.eos-image-version"


@dataclass(frozen=True)
class Built:
    out: Path
    outversion: str
    manifest: dict[str, object]

    def file(self, suffix: str) -> Path:
        return self.out / f"{self.outversion}.{suffix}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, served: Served,
          signing: Signing) -> Iterator[Built]:
    """One signed build with a disk image, a qcow2 and an OVF zip (a dry run: nothing is
    uploaded)."""
    top = tmp_path_factory.mktemp("legacyout")
    build = Build(top, top / "recipe" / "recipe.yaml")
    write_recipe(build.recipe.parent, served, signing,
                 image={"signing_keyid": signing.good_key, "gpg_homedir": str(signing.homedir),
                        "compression": "gz", "qcow2": True, "vm_image": True,
                        "extra_space": 4 << 20})
    argv = [a for a in build.argv() if a != "--no-disk"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=eib_env(), timeout=300,
                          check=False)
    try:
        assert proc.returncode == 0, proc.stderr
        manifest_file = next(build.out.glob("*.manifest.json"))
        manifest = json.loads(manifest_file.read_text())
        yield Built(build.out, manifest["outversion"], manifest)
    finally:
        _remove(build.work)


def images(built: Built) -> dict[str, dict[str, object]]:
    found = built.manifest["images"]
    assert isinstance(found, dict)
    return found


def test_ostree_txt_names_the_branch_and_shows_the_commit(built: Built, served: Served) -> None:
    text = built.file("ostree.txt").read_text()
    lines = text.splitlines()
    assert lines[0] == f"Branch {REF}"
    assert lines[1] == f"commit {served.good_commit}"
    assert re.search(r"^Date:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000$", text, re.M)
    assert re.search(r"^Version: 2\.0$", text, re.M)


def test_size_files_hold_the_extracted_sizes(built: Built) -> None:
    full = images(built)["full"]
    compressed = built.out / str(full["file"])
    assert compressed.name == f"{built.outversion}.img.gz"
    size_text = (built.out / f"{compressed.name}.size").read_text()
    extracted = 0
    with gzip.open(compressed, "rb") as stream:
        while chunk := stream.read(1 << 20):
            extracted += len(chunk)
    assert size_text == f"{extracted}\n"
    assert full["extracted_size"] == extracted
    qcow2 = built.file("qcow2")
    assert built.file("qcow2.size").read_text() == f"{qcow2.stat().st_size}\n"
    assert not built.file("img.size").exists()  # the raw image is not published


def test_sha256sums_check_and_its_gpg_signature_verifies(built: Built, signing: Signing) -> None:
    sums = (built.out / "SHA256SUMS").read_text()
    names = [line.split("  ", 1)[1] for line in sums.splitlines()]
    for name in (f"{built.outversion}.img.gz", f"{built.outversion}.qcow2",
                 f"{built.outversion}.manifest.json", f"{built.outversion}.config.ini",
                 f"{built.outversion}.ostree.txt", f"{built.outversion}.img.gz.size"):
        assert name in names
    assert not any(n.startswith("SHA256SUMS") for n in names)
    # The build log's line is its published snapshot: the local log has grown since.
    stable = "".join(line + "\n" for line in sums.splitlines()
                     if not line.endswith("  build.txt"))
    check = subprocess.run(["sha256sum", "--strict", "-c", "-"], input=stable, text=True,
                           cwd=built.out, capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    legacy = built.out / "SHA256SUMS.gpg"
    assert legacy.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    assert legacy.read_bytes() == (built.out / "SHA256SUMS.asc").read_bytes()
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o700)
        exported = subprocess.run(["gpg", "--homedir", str(signing.homedir), "--armor",
                                   "--export", signing.good_key],
                                  capture_output=True, check=True).stdout
        subprocess.run(["gpg", "--homedir", home, "--batch", "--import"], input=exported,
                       capture_output=True, check=True)
        verify = subprocess.run(["gpg", "--homedir", home, "--batch", "--status-fd", "1",
                                 "--verify", str(legacy), str(built.out / "SHA256SUMS")],
                                capture_output=True, text=True, check=False)
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    assert verify.returncode == 0, verify.stderr
    assert f"VALIDSIG {signing.good_key}" in verify.stdout


def test_manifest_has_the_legacy_keys_and_keeps_eibs(built: Built, served: Served) -> None:
    m = built.manifest
    for key in ("product", "product_name", "branch", "arch", "platform", "personality",
                "build_version", "builder_commit"):
        assert isinstance(m[key], str), key
    assert m["product"] == "eibtest" and m["personality"] == "base"
    builder = m["builder"]
    assert isinstance(builder, dict) and builder["commit"] == m["builder_commit"]
    full = images(built)["full"]
    name = f"{built.outversion}.img.gz"
    assert full["file"] == name
    assert full["compression_type"] == "gz"
    assert full["compressed_size"] == (built.out / name).stat().st_size
    assert full["signature"] == f"{name}.asc" and (built.out / f"{name}.asc").is_file()
    assert full["checksum"] == f"{name}.sha256"
    assert full["size_file"] == f"{name}.size"  # eib's own keys stay
    assert isinstance(full["sha256"], str) and isinstance(full["partitions"], list)
    qcow2 = images(built)["qcow2"]
    assert qcow2["compressed_size"] == built.file("qcow2").stat().st_size
    ostree = m["ostree"]
    assert isinstance(ostree, dict)
    assert ostree["os"] == "eibtest" and ostree["remote"] == "eibtest"
    assert ostree["commit"] == served.good_commit and ostree["version"] == "2.0"
    assert ostree["ref"] == REF and ostree["ref_deploy"] == REF
    assert ostree["deploy_url"] == "https://updates.example.invalid/ostree"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", str(ostree["date"]))
    assert ostree["collection-id"] is None


def test_image_root_carries_the_version_xattr(built: Built, tmp_path: Path) -> None:
    full = images(built)["full"]
    raw = tmp_path / "image.img"
    with gzip.open(built.out / str(full["file"]), "rb") as src, raw.open("wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    partitions = full["partitions"]
    assert isinstance(partitions, list)
    root = next(p for p in partitions if p["role"] == "root")
    value = ext4.get_xattr(raw, "/", VERSION_XATTR, offset=root["start"] * 512)
    assert value == built.outversion
    # The published image file carries it too where the file system keeps user
    # attributes; elsewhere the build says it could not tag it.
    probe = built.out.parent / "xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.eib-probe", b"1")
        supported = True
    except OSError:
        supported = False
    finally:
        probe.unlink()
    if supported:
        assert os.getxattr(built.out / str(full["file"]), VERSION_XATTR) == \
            built.outversion.encode()
    else:
        log = (built.out / "build.txt").read_text()
        assert f"the file system keeps no {VERSION_XATTR} attribute" in log


def test_config_ini_is_the_public_config(built: Built) -> None:
    text = built.file("config.ini").read_text()
    assert text.startswith(f"# Configuration for {built.outversion}\n[build]\n")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    assert parser["build"]["product"] == "eibtest"
    assert parser["ostree"]["ref"] == REF
    assert parser["image"]["compression"] == "gz"
    assert parser["image"]["qcow2"] == "true"


def test_config_ini_of_a_legacy_tree_holds_no_private_value(
    build: Build, served: Served, signing: Signing
) -> None:
    config = legacy_tree(build.top / "legacy", served, signing)
    proc = subprocess.run(build.argv(source=[str(config)]), capture_output=True, text=True,
                          env=eib_env(), timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    found = list(build.out.glob("*.config.ini"))
    assert len(found) == 1
    text = found[0].read_text()
    assert PASSWORD not in text and TOKEN not in text
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    # Private options are left out, as in the hooks' EIB_TMPCONFIG it copies.
    assert "header" not in parser["custom"] and "token" not in parser["custom"]
    assert parser["ostree"]["ref"] == REF
    assert "10-secret" in parser["image"]["hooks"].split()


def test_vm_image_writes_the_ovf_zip(built: Built) -> None:
    """`<outversion>.ovf.zip`: the OVF descriptor, a streamOptimized VMDK of the image
    grown by 10 GiB, and the `.mf` with both sha256s; `.size`, `.sha256`, `.asc` and
    `images.ovfzip` as the legacy builder wrote them."""
    zipped = built.file("ovf.zip")
    name = built.outversion
    with zipfile.ZipFile(zipped) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"{name}.{ext}" for ext in ("mf", "ovf", "vmdk"))
        total = sum(i.file_size for i in archive.infolist())
        files = {n: archive.read(n) for n in archive.namelist()}
    assert built.file("ovf.zip.size").read_text() == f"{total}\n"
    mf = files[f"{name}.mf"].decode().splitlines()
    for member in (f"{name}.ovf", f"{name}.vmdk"):
        assert f"SHA256 ({member}) = {hashlib.sha256(files[member]).hexdigest()}" in mf
    ovf = ElementTree.fromstring(files[f"{name}.ovf"])
    ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1"}
    disk = ovf.find("ovf:DiskSection/ovf:Disk", ns)
    assert disk is not None
    raw_size = images(built)["full"]["extracted_size"]
    assert isinstance(raw_size, int)
    assert int(disk.get(f"{{{ns['ovf']}}}capacity", "0")) == raw_size + (10 << 30)
    with tempfile.TemporaryDirectory() as tmp:
        vmdk = Path(tmp) / "disk.vmdk"
        vmdk.write_bytes(files[f"{name}.vmdk"])
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(vmdk)],
                                         capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "vmdk" and info["virtual-size"] == raw_size + (10 << 30)
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    entry = images(built)["ovfzip"]
    assert entry["file"] == zipped.name and entry["compression_type"] == "zip"
    assert entry["extracted_size"] == total
    assert built.file("ovf.zip.sha256").read_text().startswith(
        hashlib.sha256(zipped.read_bytes()).hexdigest())
    assert built.file("ovf.zip.asc").is_file()


def test_vm_image_off_amd64_is_a_warning_not_an_ovf_zip(
    build: Build, served: Served, signing: Signing
) -> None:
    """The OVF zip is an amd64 VM: a legacy tree sets vm_image for every arch and got
    none on arm64; eib says so in the plan (and the build log) instead of silently."""
    config = legacy_tree(build.top / "legacy", served, signing)
    defaults = config / "defaults.ini"
    defaults.write_text(defaults.read_text().replace("[image]\n", "[image]\nvm_image = true\n"))
    for arch, made in (("arm64", False), ("amd64", True)):
        proc = subprocess.run([*EIB, "plan", str(config), "--arch", arch, "--json"],
                              capture_output=True, text=True, env=eib_env(), check=False)
        assert proc.returncode == 0, proc.stderr
        plan = json.loads(proc.stdout)
        assert plan["image"]["vm_image"] is made
        warned = any(f"image.vm_image: no OVF zip for {arch}" in w for w in plan["warnings"])
        assert warned is not made
        assert any(s["name"] == "ovf.zip" for st in plan["stages"] for s in st["steps"]) is made
