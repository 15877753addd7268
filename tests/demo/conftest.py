"""Fixtures for the demo OS tests: one demo build per session, from a kernel
`.deb` kept across runs in a directory named after the kernel package (so a
fresh machine downloads it once, reruns never)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from eib.demo import DemoPaths, ensure_demo
from eib.demo.kernel import current_kernel_package, fetch_kernel_deb

TEST_CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache"))


@pytest.fixture(scope="session")
def kernel_package() -> str:
    return current_kernel_package()


@pytest.fixture(scope="session")
def kernel_deb_dir(kernel_package: str) -> Path:
    deb_dir = TEST_CACHE / "kernel" / kernel_package
    fetch_kernel_deb(kernel_package, deb_dir)
    return deb_dir


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def demo(demo_cache: Path, kernel_deb_dir: Path, kernel_package: str) -> DemoPaths:
    return ensure_demo(demo_cache, deb_dir=kernel_deb_dir, kernel_package=kernel_package)


@pytest.fixture
def keyring(demo: DemoPaths, tmp_path: Path) -> Path:
    """A directory with the demo public key as a binary keyring: what
    `ostree show --gpg-homedir` reads (its `*.gpg` files)."""
    keydir = tmp_path / "keyring"
    keydir.mkdir()
    binary = subprocess.run(
        ["gpg", "--dearmor"], input=demo.gpg_key.read_bytes(), capture_output=True, check=True
    ).stdout
    (keydir / "eib-demo.gpg").write_bytes(binary)
    return keydir


def _unlock(sysroot: Path) -> None:
    """Clear the immutable bit ostree puts on deployments, so the tree can go."""
    for deployment in sysroot.glob("ostree/deploy/*/deploy/*"):
        if deployment.is_dir() and not deployment.is_symlink():
            subprocess.run(["chattr", "-i", str(deployment)], check=True)


@pytest.fixture
def sysroot(tmp_path: Path) -> Iterator[Path]:
    """An empty sysroot directory that is unlocked and removed afterwards."""
    root = tmp_path / "sysroot"
    root.mkdir()
    yield root
    _unlock(root)
    shutil.rmtree(root, ignore_errors=True)
