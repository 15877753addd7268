"""The Debian OS and one image of it, built once per test run and shared.

The OS itself (`eib demo-os --os debian`) is cached under
`$EIB_TEST_CACHE/debian-cache` (default /var/tmp/eib-test-cache), so later
runs on the same machine reuse it; the image is built once per session from
a recipe that extends `recipes/debian.yaml` with the legacy builder's generic
hooks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eib.demo.debian import DebianPaths, ensure_debian
from eib.paths import RECIPES_DIR
from tests.loopback import free_port

TEST_CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache"))
CACHE = TEST_CACHE / "debian-cache"
EIB = [sys.executable, "-m", "eib.cli"]
HOOKS = Path(__file__).parent / "hooks"
# The built-in generic hooks that apply to a Debian OS, plus test-only ones
# (10-eib-test-*: inputs; 55-ostree-gi.chroot: the OS's GObject bindings).
# The legacy default image hooks that apply to this OS; eib installs the
# Flatpaks at 50-flatpak.chroot's place, so the 70-flatpak-* hooks see them.
IMAGE_HOOKS = (
    "10-eib-test-eos-units", "10-eib-test-sysusers-conf", "10-systemd-sysusers.chroot",
    "10-systemd-tmpfiles.chroot", "50-firewall-localonly.chroot", "50-flatpak.chroot",
    "50-hostname", "50-language", "50-locales", "50-reclaim-swap-stamp",
    "50-safe-defaults.chroot", "50-timezone", "50-update-done-stamp", "50-update-server.chroot",
    "50-xkb", "50-xkb-layout.chroot", "55-ostree-gi.chroot",
    "60-flatpak-autoinstall-counters.chroot", "70-flatpak-appstream-catalog",
    "70-flatpak-manifest", "70-ostree-manifest", "80-ldconfig-aux-cache.chroot",
)


def eib(*args: str | Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def debian_os() -> DebianPaths:
    if shutil.which("mmdebstrap") is None:
        pytest.fail("mmdebstrap is missing: run ./install.sh")
    return ensure_debian(CACHE)


@dataclass(frozen=True)
class DebianBuild:
    work: Path
    out: Path
    output: str
    commit: str

    @property
    def deployment(self) -> Path:
        return next((self.work / "sysroot/ostree/deploy/eib-debian/deploy").glob("*.0"))

    @property
    def var(self) -> Path:
        return self.work / "sysroot/ostree/deploy/eib-debian/var"

    def one(self, pattern: str) -> Path:
        found = sorted(self.out.glob(pattern))
        assert len(found) == 1, (pattern, [p.name for p in self.out.iterdir()])
        return found[0]


@pytest.fixture(scope="session")
def debian_build(
    debian_os: DebianPaths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DebianBuild]:
    """`eib run` of recipes/debian.yaml plus the built-in generic hooks."""
    base = tmp_path_factory.mktemp("debian")
    recipe_dir = base / "recipe"
    # Test-only hooks; the built-in ones are found in eib's hooks/.
    shutil.copytree(HOOKS, recipe_dir / "hooks")
    recipe = recipe_dir / "recipe.yaml"
    recipe.write_text(
        f"eib: 1\nextends: [{RECIPES_DIR / 'debian.yaml'}]\n"
        "image:\n  xkb_layout: br\n  xkb_variant: abnt2\n  language: pt_BR.UTF-8\n"
        "flatpak:\n  locales: [en, pt]\n"
        "hooks:\n"
        f"  image: [{', '.join(IMAGE_HOOKS)}]\n"
    )
    work = base / "work"
    proc = eib("run", recipe, "--set", f"demo.port={free_port()}", "--cache-dir", CACHE,
               "--work-dir", work, "--no-cache")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    yield DebianBuild(work, work / "out", proc.stdout + proc.stderr, debian_os.commit)
    remove(base)
