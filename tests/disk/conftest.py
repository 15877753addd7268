"""Fixtures for the disk image tests: a synthetic deployed sysroot, plans
compiled from tiny recipes, and a throwaway GPG key.

The sysroot looks like what `ostree admin deploy` leaves behind (a deployment
dir, BLS entries, kernel and initramfs under boot/ostree) and carries the same
GRUB images the demo OS ships, built from the host's GRUB modules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eib.compile import compiler
from eib.model.plan import Plan

JAN_2026 = 1767225600  # 260101-000000

OS_NAME = "eos"
COMMIT = "a" * 64
BOOTCSUM = "b" * 64
OS_RELEASE = 'NAME="Disk Test OS"\nID=disktest\nVERSION="1.0"\nPRETTY_NAME="Disk Test OS 1.0"\n'


def deployment_rel() -> str:
    return f"ostree/deploy/{OS_NAME}/deploy/{COMMIT}.0"


@pytest.fixture(scope="session")
def grub_usr_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """usr/lib with GRUB's boot.img, core.img and grubx64.efi, made like the demo's."""
    from eib.demo.grub import install_grub_images

    base = tmp_path_factory.mktemp("grub")
    install_grub_images(base / "usr" / "lib", base / "work")
    return base / "usr" / "lib"


def build_sysroot(root: Path, grub_usr_lib: Path | None, *, big: int = 0) -> Path:
    """A sysroot with one deployment: files, a hard link, xattrs, BLS entry."""
    sysroot = root / "sysroot"
    deploy = sysroot / deployment_rel()
    (deploy / "usr" / "lib").mkdir(parents=True)
    (deploy / "etc").mkdir()
    (deploy / "usr" / "lib" / "os-release").write_text(OS_RELEASE)
    (deploy / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    (deploy / "usr" / "bin").mkdir()
    hello = deploy / "usr" / "bin" / "hello"
    hello.write_text("#!/bin/sh\necho hello\n")
    hello.chmod(0o755)
    # ostree's repo objects are hard links to the deployment's files.
    objects = sysroot / "ostree" / "repo" / "objects" / "ab"
    objects.mkdir(parents=True)
    os.link(hello, objects / "cdef.file")
    os.setxattr(hello, "user.eib-test", b"kept")
    (deploy / "usr" / "share").mkdir()
    for i in range(50):
        (deploy / "usr" / "share" / f"doc{i}.txt").write_text(f"document {i}\n" * 40)
    if big:
        (deploy / "usr" / "share" / "big.bin").write_bytes(os.urandom(big))
    if grub_usr_lib is not None:
        shutil.copytree(grub_usr_lib / "grub", deploy / "usr" / "lib" / "grub")
    (sysroot / "ostree" / "deploy" / OS_NAME / "var").mkdir(parents=True)
    bootdir = sysroot / "boot" / "ostree" / f"{OS_NAME}-{BOOTCSUM}"
    bootdir.mkdir(parents=True)
    (bootdir / "vmlinuz-6.1.0-test").write_bytes(b"kernel" * 1000)
    (bootdir / "initramfs-6.1.0-test.img").write_bytes(b"initrd" * 1000)
    entries = sysroot / "boot" / "loader" / "entries"
    entries.mkdir(parents=True)
    (entries / f"ostree-1-{OS_NAME}.conf").write_text(
        "title Disk Test OS 1.0 (ostree:0)\n"
        "version 1\n"
        f"options root=LABEL=ostree rw ostree=/ostree/boot.1/{OS_NAME}/{BOOTCSUM}/0\n"
        f"linux /ostree/{OS_NAME}-{BOOTCSUM}/vmlinuz-6.1.0-test\n"
        f"initrd /ostree/{OS_NAME}-{BOOTCSUM}/initramfs-6.1.0-test.img\n"
    )
    return sysroot


@pytest.fixture
def sysroot(tmp_path: Path, grub_usr_lib: Path) -> Path:
    return build_sysroot(tmp_path, grub_usr_lib)


def compile_plan(tmp_path: Path, variant: dict[str, str], image: dict[str, Any]) -> Plan:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump({"eib": 1, "variant": {"product": "eos", **variant}, "image": image})
    )
    result = compiler.compile_plan(compiler.CompileRequest(recipe, source_date_epoch=JAN_2026))
    return result.plan


@pytest.fixture
def make_plan(tmp_path: Path) -> Callable[..., Plan]:
    def make(variant: dict[str, str] | None = None, **image: Any) -> Plan:
        image.setdefault("extra_space", 8 << 20)
        return compile_plan(tmp_path, variant or {"arch": "amd64"}, image)

    return make


@pytest.fixture(scope="session")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(GNUPGHOME, fingerprint) of a throwaway signing key without passphrase."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "EIB Disk Test <disk@example.org>",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    yield home, fpr
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)


TEST_CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache"))


@pytest.fixture(scope="session")
def demo_paths() -> Any:
    """The demo OS repo, built once and kept under `$EIB_TEST_CACHE` (default
    /var/tmp/eib-test-cache) with the kernel .deb shared with the demo tests,
    so reruns reuse it."""
    from eib.demo import ensure_demo
    from eib.demo.kernel import current_kernel_package, fetch_kernel_deb

    package = current_kernel_package()
    deb_dir = TEST_CACHE / "kernel" / package
    fetch_kernel_deb(package, deb_dir)
    return ensure_demo(
        TEST_CACHE / "disk", deb_dir=deb_dir, kernel_package=package, flatpak_builder=False
    )


def deploy_demo(demo: Any, dest: Path) -> Path:
    """Deploy the demo commit into `dest/sysroot` as `ostree admin deploy` does."""
    from eib.demo import OS_NAME

    sysroot = dest / "sysroot"
    sysroot.mkdir(parents=True)
    repo = sysroot / "ostree" / "repo"

    def sh(*argv: str | Path) -> None:
        subprocess.run([str(a) for a in argv], check=True, capture_output=True)

    sh("ostree", "admin", "init-fs", sysroot)
    sh("ostree", "admin", f"--sysroot={sysroot}", "os-init", OS_NAME)
    sh("ostree", f"--repo={repo}", "config", "set", "sysroot.bootloader", "none")
    sh("ostree", f"--repo={repo}", "pull-local", demo.ostree_repo, demo.commit)
    sh("ostree", f"--repo={repo}", "refs", "--create", f"demo:{demo.ostree_ref}", demo.commit)
    sh(
        "ostree",
        "admin",
        f"--sysroot={sysroot}",
        "deploy",
        f"--os={OS_NAME}",
        "--karg=root=LABEL=ostree",
        "--karg=rw",
        "--karg=console=ttyS0",
        f"demo:{demo.ostree_ref}",
    )
    return sysroot


def make_mutable(root: Path) -> None:
    """ostree deployments are immutable: clear the bit so tmp_path can be removed."""
    for deployment in root.glob("sysroot/ostree/deploy/*/deploy/*.*"):
        if deployment.is_dir():
            subprocess.run(["chattr", "-i", str(deployment)], check=False)
