"""eib's built-in generic hooks on the real Debian OS (systemd, flatpak, ldconfig):
what they left in the deployment, the manifest and the output dir."""

from __future__ import annotations

import gzip
import json
import os

from .conftest import DebianBuild


def test_systemd_presets_enable_the_units(debian_build: DebianBuild) -> None:
    etc = debian_build.deployment / "etc"
    presets = etc / "systemd/system-preset"
    assert (presets / "40-eos-firewall-localonly.preset").read_text() == (
        "enable eos-firewall-localonly.service\n")
    assert (presets / "40-eos-safe-defaults.preset").read_text() == (
        "enable eos-safe-defaults.service\n")
    assert (presets / "40-eos-update-server.preset").read_text() == (
        "enable eos-update-server.socket\nenable eos-updater-avahi.path\n")
    system = etc / "systemd/system"
    for wants in ("multi-user.target.wants/eos-firewall-localonly.service",
                  "multi-user.target.wants/eos-safe-defaults.service",
                  "sockets.target.wants/eos-update-server.socket",
                  "paths.target.wants/eos-updater-avahi.path"):
        assert (system / wants).is_symlink(), wants
    assert (etc / "eib-test-safe-defaults").read_text() == "enable\n"
    # /usr/local is a link to /var/usrlocal in this OS
    assert os.readlink(debian_build.deployment / "usr/local") == "../var/usrlocal"
    server = debian_build.var / "usrlocal/share/eos-updater/eos-update-server.conf"
    assert "AdvertiseUpdates=true" in server.read_text()


def test_keyboard_stamps_and_caches(debian_build: DebianBuild) -> None:
    deploy, var = debian_build.deployment, debian_build.var
    etc = deploy / "etc"
    # 50-xkb-layout.chroot (run by the OS's /bin/sh)
    xorg = (etc / "X11/xorg.conf.d/00-keyboard.conf").read_text()
    assert '"XkbLayout" "br"' in xorg and '"XkbVariant" "abnt2"' in xorg
    assert xorg.startswith('Section "InputClass"') and xorg.endswith("EndSection\n")
    assert (etc / "default/keyboard").read_text().endswith("XKBLAYOUT=br\nXKBVARIANT=abnt2\n")
    # 50-reclaim-swap-stamp
    assert (var / "eos-swap-reclaimed").stat().st_mtime == (deploy / "usr").stat().st_mtime
    # 50-timezone: Debian's /etc/timezone too
    assert (etc / "timezone").read_text() == "Etc/UTC\n"
    # 80-ldconfig-aux-cache.chroot
    assert (var / "cache/ldconfig/aux-cache").stat().st_size > 0
    # 60-flatpak-autoinstall-counters.chroot: this OS has no installer
    assert ("60-flatpak-autoinstall-counters: /usr/libexec/eos-updater-flatpak-installer "
            "is not in the OS; skipped") in debian_build.output + (
        debian_build.out / "build.txt").read_text()


def test_manifest_has_the_legacy_fragments(debian_build: DebianBuild) -> None:
    manifest = json.loads(debian_build.one("*.manifest.json").read_text())
    assert manifest["image_language"] == "pt_BR.UTF-8"
    ostree = manifest["ostree"]
    assert ostree["version"] == "12 (bookworm)"
    assert ostree["commit"] == debian_build.commit
    assert ostree["ref"] == "os/eib-debian/amd64/bookworm"
    assert ostree["url"] == "https://updates.example.org/ostree/debian"
    assert ostree["collection-id"] is None
    flatpak = manifest["flatpak"]
    app = flatpak["apps"]["org.eib.DebianHello/x86_64/stable"]
    assert app["runtime"] == "org.eib.DebianPlatform/x86_64/12"
    assert app["ref"] == "app/org.eib.DebianHello/x86_64/stable"
    assert app["remote"] == "eib-debian" and len(app["commit"]) == 64
    assert app["appdata"] == {"C": {"name": "DebianHello", "summary": "The DebianHello demo app"}}
    assert isinstance(app["size"], int) and app["size"] > 0
    assert app["date"].endswith("+0000")
    runtime = flatpak["runtimes"]["org.eib.DebianPlatform/x86_64/12"]
    assert set(runtime) >= {"name", "arch", "branch", "remote", "commit", "size", "ref", "date",
                            "version"}
    assert "runtime" not in runtime
    remote = flatpak["remotes"]["eib-debian"]
    assert remote["url"] == "https://updates.example.org/flatpak/debian"
    assert remote["collection-id"] is None
    # eib's own keys are still there.
    assert "app/org.eib.DebianHello/x86_64/stable" in flatpak["installed"]


def test_appstream_catalog_lists_the_installed_app(debian_build: DebianBuild) -> None:
    catalog = debian_build.one("*.appstream.xml.gz")
    outversion = catalog.name.removesuffix(".appstream.xml.gz")
    xml = gzip.decompress(catalog.read_bytes()).decode()
    assert f'<components version="0.8" origin="{outversion}">' in xml
    assert ">app/org.eib.DebianHello/x86_64/stable</bundle>" in xml
    assert not os.path.exists(str(catalog).removesuffix(".gz"))
