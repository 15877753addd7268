"""The Debian OS: its tree, its reproducible commit, an image of it with the
legacy generic hooks, and boots to systemd's multi-user target with its
Flatpak app running, under UEFI and BIOS."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from eib.demo.debian import DebianPaths, ensure_debian_dir
from eib.demo.debian.mirror import host_sources

from .conftest import CACHE, DebianBuild, eib


def _cat(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(["ostree", f"--repo={repo}", "cat", commit, path],
                          capture_output=True, text=True, check=True).stdout


def _ls(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(["ostree", f"--repo={repo}", "ls", commit, path],
                          capture_output=True, text=True, check=False).stdout


def test_tree_has_the_ostree_layout_and_no_mirror(debian_os: DebianPaths) -> None:
    repo, commit = debian_os.ostree_repo, debian_os.commit
    subprocess.run(["ostree", f"--repo={repo}", "fsck"], capture_output=True, check=True)
    kver = debian_os.kernel_version
    listing = _ls(repo, commit, f"/usr/lib/modules/{kver}")
    assert "vmlinuz" in listing and "initramfs.img" in listing
    assert 'NAME="EIB Debian OS"' in _cat(repo, commit, "/usr/lib/os-release")
    assert "-> var/home" in _ls(repo, commit, "/home")
    assert "-> sysroot/ostree" in _ls(repo, commit, "/ostree")
    assert _ls(repo, commit, "/var").strip().startswith("d")
    assert len(_ls(repo, commit, "/var").splitlines()) == 1  # empty
    assert "/usr/etc/hosts" not in _ls(repo, commit, "/etc")
    assert "127.0.1.1" in _cat(repo, commit, "/usr/etc/hosts")
    for tool in ("/usr/bin/python3", "/usr/bin/flatpak", "/usr/bin/ostree",
                 "/usr/lib/systemd/systemd", "/usr/bin/systemd-sysusers"):
        assert _ls(repo, commit, tool), tool
    assert _ls(repo, commit, "/usr/lib/x86_64-linux-gnu/girepository-1.0/OSTree-1.0.typelib")
    assert _ls(repo, commit, "/usr/lib/x86_64-linux-gnu/girepository-1.0/Flatpak-1.0.typelib")
    # No manuals or documentation beyond copyright files.
    man = subprocess.run(["ostree", f"--repo={repo}", "ls", "-R", commit, "/usr/share/man",
                          "/usr/share/doc"], capture_output=True, text=True, check=True).stdout
    files = [line.split()[-1] for line in man.splitlines() if line.startswith("-")]
    assert files and all(f.endswith("/copyright") for f in files), files[:5]
    # Signed with the demo key.
    subprocess.run(["ostree", f"--repo={repo}", "show", "--gpg-homedir",
                    str(debian_os.gpg_homedir), commit], capture_output=True, check=True)
    # The host's mirror is not in the tree's apt configuration.
    assert _ls(repo, commit, "/usr/etc/apt/sources.list.d").count("\n") == 1
    assert not _ls(repo, commit, "/usr/etc/apt/sources.list")


def test_initramfs_runs_ostree_prepare_root(debian_os: DebianPaths, tmp_path: Path) -> None:
    image = tmp_path / "initramfs.img"
    image.write_bytes(subprocess.run(
        ["ostree", f"--repo={debian_os.ostree_repo}", "cat", debian_os.commit,
         f"/usr/lib/modules/{debian_os.kernel_version}/initramfs.img"],
        capture_output=True, check=True).stdout)
    data = image.read_bytes()
    tools = {b"\x28\xb5\x2f\xfd": ["zstd", "-dc"], b"\x1f\x8b": ["gzip", "-dc"],
             b"\xfd7zXZ": ["xz", "-dc"]}
    unpack = next((argv for magic, argv in tools.items() if data.startswith(magic)), ["cat"])
    cpio = subprocess.run(unpack, input=data, capture_output=True, check=True).stdout
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=cpio, capture_output=True,
                             check=True).stdout.decode()
    assert "usr/lib/ostree/ostree-prepare-root" in listing
    assert "ostree-prepare-root.service" in listing


def test_cli_reuses_the_built_os_in_seconds(debian_os: DebianPaths) -> None:
    proc = eib("demo-os", "--os", "debian", "--dir", CACHE / "demo", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert debian_os.commit in proc.stdout
    assert "os/eib-debian/amd64/bookworm" in proc.stdout


@pytest.mark.slow
def test_same_inputs_give_the_same_commit(debian_os: DebianPaths, tmp_path: Path) -> None:
    """A second, independent build (same key, same cached packages) commits the
    same tree checksum."""
    demo = tmp_path / "demo"
    shutil.copytree(CACHE / "demo" / "gnupg", demo / "gnupg")
    shutil.copytree(CACHE / "demo" / "debian" / "debs", demo / "debian" / "debs")
    again = ensure_debian_dir(demo)
    assert again.commit == debian_os.commit


def test_image_has_the_deployment_and_the_legacy_hooks_effects(debian_build: DebianBuild) -> None:
    deploy = debian_build.deployment
    assert deploy.name.startswith(debian_build.commit)
    etc = deploy / "etc"
    # 10-systemd-sysusers.chroot (systemd-sysusers in the OS)
    assert re.search(r"^eibtest:x:\d+:\d+:eib test user:", (etc / "passwd").read_text(), re.M)
    # 10-systemd-tmpfiles.chroot: the OS's tmpfiles.d made its state dirs in /var
    assert (debian_build.var / "home").is_dir() and (debian_build.var / "roothome").is_dir()
    assert (debian_build.var / "lib" / "systemd").is_dir()
    # hostname (on an /etc/hosts that exists), timezone, language, xkb
    assert (etc / "hostname").read_text().strip() == "eib-debian"
    assert "localhost" in (etc / "hosts").read_text()
    assert os.readlink(etc / "localtime").endswith("zoneinfo/Etc/UTC")
    assert "LANG=pt_BR.UTF-8" in (etc / "locale.conf").read_text()
    assert "XKBLAYOUT=br" in (etc / "vconsole.conf").read_text()
    # stamps
    assert (etc / ".updated").exists() and (debian_build.var / ".updated").exists()
    # The Python hook ran inside the OS with its OSTree and Flatpak bindings.
    gi = (etc / "eib-ostree-gi.txt").read_text()
    assert "eib-debian:os/eib-debian/amd64/bookworm" in gi
    assert "flatpak_arch=x86_64" in gi
    # locales fragment and the Flatpak app in the manifest
    manifest = json.loads(debian_build.one("*.manifest.json").read_text())
    assert manifest["flatpak_locales"] == ["en", "pt"]
    assert "app/org.eib.DebianHello/x86_64/stable" in manifest["flatpak"]["installed"]
    assert "runtime/org.eib.DebianPlatform/x86_64/12" in manifest["flatpak"]["installed"]
    assert manifest["ostree"]["commit"] == debian_build.commit
    # The host's mirror appears in no output and not in the build's output.
    for source in host_sources():
        assert source.uri not in debian_build.output
        for path in debian_build.out.glob("*"):
            if path.suffix in (".json", ".yaml", ".txt", ".log"):
                assert source.uri not in path.read_text(errors="replace"), path


def test_inspect_shows_the_deployment(debian_build: DebianBuild) -> None:
    proc = eib("inspect", "--json", debian_build.one("*.img.zst"))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert [d["os"] for d in info["deployments"]] == ["eib-debian"]
    assert info["bios_bootloader"] == "grub"


@pytest.mark.boot
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu is not installed")
@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_image_boots_systemd_and_runs_the_app(
    debian_build: DebianBuild, firmware: str, tmp_path: Path
) -> None:
    log = tmp_path / f"{firmware}.log"
    proc = eib("boot", debian_build.one("*.img.zst"), "--firmware", firmware,
               "--timeout", "900", "--expect", "EIB-OS-READY", "--log", log, timeout=1000)
    console = log.read_text(errors="replace")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "EIB-FLATPAK-OK org.eib.DebianHello" in console
    ready = re.search(r"EIB-OS-READY state=(\S+) deployment=([0-9a-f]*)", console)
    assert ready is not None, console[-3000:]
    assert ready.group(1) == "running", console[-3000:]
    assert ready.group(2) == debian_build.commit
    # systemd is PID 1, not a script posing as init.
    assert "systemd" in console and "Reached target" in console
