"""eib's built-in hooks under their legacy names, on the tiny demo OS.

One real build (real pull, deploy, mounts and chroot) runs every built-in
hook that needs no systemd, with the options a legacy config would set;
the Debian tests cover the ones that do.  Two more builds check that a bad
input fails the build and names the hook.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import Build, Served, Signing, eib_env, write_hook, write_recipe

IMAGE_HOOKS = [
    "05-eib-test-inputs",
    "50-branding-background", "50-branding-fbe", "50-hostname", "50-initramfs-append",
    "50-language", "50-locales", "50-metrics-urls", "50-reclaim-swap-stamp", "50-timezone",
    "50-update-done-stamp", "60-chromium-policies", "60-dconf-prepare",
    "61-dconf-compile.chroot", "63-icon-grid", "70-flatpak-appstream-catalog",
    "70-flatpak-manifest", "70-ostree-manifest",
]

# Test input: the files a legacy OS ships that the hooks edit, and a stand-in
# `dconf` (the demo OS has none) that records what it was asked to compile.
INPUTS = r"""
printf '127.0.0.1 localhost\n127.0.1.1 endless\n' > "$OSTREE_DEPLOYMENT/etc/hosts"
mkdir -p "$OSTREE_DEPLOYMENT/etc/metrics"
printf '[global]\nenabled=true\nserver_url=https://old.example.invalid\n' \
  > "$OSTREE_DEPLOYMENT/etc/metrics/eos-metrics-permissions.conf"
cat > "$OSTREE_DEPLOYMENT/usr/bin/dconf" <<'EOF'
#!/bin/sh
echo "$@" > /etc/eib-test-dconf-args
ls /tmp/dconf-overrides /tmp/dconf-overrides/locks > /etc/eib-test-dconf-staged
mkdir -p "$(dirname "$2")" && echo compiled > "$2"
EOF
chmod 755 "$OSTREE_DEPLOYMENT/usr/bin/dconf"
"""


def _inputs(top: Path) -> dict[str, Path]:
    files = {
        "background": ("background.png", "not really a png\n"),
        "fbe": ("vendor.conf", "[Language]\ninitial_languages=pt_BR;en_US\n"),
        "watermark": ("watermark.png", "watermark\n"),
        "settings": ("50-eib-test.gschema.override", "[org.gnome.desktop]\nfoo='bar'\n"),
        "lock": ("eib-test-locks", "/org/gnome/desktop/foo\n"),
        "grid": ("icon-grid-C.json", '{"desktop": ["org.eib.Hello.desktop"]}\n'),
        "managed": ("eib-managed.json", '{"HomepageLocation": "https://example.invalid"}\n'),
        "recommended": ("eib-recommended.json", '{"ShowHomeButton": true}\n'),
    }
    top.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, (name, text) in files.items():
        paths[key] = top / name
        paths[key].write_text(text)
    return paths


def _legacy_options(inputs: dict[str, Path]) -> dict[str, Any]:
    """The built-in hooks' options: typed `image:` fields (a legacy tree's [image] keys)."""
    return {
        "branding_desktop_background": str(inputs["background"]),
        "branding_fbe_config": str(inputs["fbe"]),
        "initramfs_plymouth_watermark": str(inputs["watermark"]),
        "metrics_server_url": "https://metrics.example.invalid",
        "activation_server_url": "https://activation.example.invalid",
        "chromium_policies": True,
        "chromium_policies_managed": str(inputs["managed"]),
        "chromium_policies_recommended": str(inputs["recommended"]),
    }


def _run(build: Build, served: Served, signing: Signing, hooks: list[str],
         image: dict[str, Any], extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "05-eib-test-inputs", INPUTS)
    write_recipe(recipe_dir, served, signing,
                 hooks={"image": hooks, "publish": ["40-build-log"]},
                 image=image, flatpak={"enable": False, "locales": ["pt", "en"]},
                 extra={"image": extra})
    argv = [a for a in build.argv() if a != "--dry-run"]
    return subprocess.run(argv, capture_output=True, text=True, env=eib_env(), timeout=180,
                          check=False)


def test_builtin_hooks_on_the_demo_os(build: Build, served: Served, signing: Signing) -> None:
    inputs = _inputs(build.top / "inputs")
    image = {"hostname": "eib-box", "language": "pt_BR.utf8", "timezone": "Europe/Lisbon",
             "settings": [str(inputs["settings"])], "settings_locks": [str(inputs["lock"])],
             "icon_grid": [str(inputs["grid"])]}
    proc = _run(build, served, signing, IMAGE_HOOKS, {**image, **_legacy_options(inputs)}, {})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    deploy = build.deployment()
    etc = deploy / "etc"
    var = deploy.parent.parent / "var"

    # 50-hostname, 50-language, 50-timezone
    assert (etc / "hostname").read_text() == "eib-box\n"
    assert (etc / "hosts").read_text() == "127.0.0.1 localhost\n127.0.1.1 eib-box\n"
    assert (etc / "locale.conf").read_text() == "LANG=pt_BR.utf8\n"
    assert os.readlink(etc / "localtime") == "../usr/share/zoneinfo/Europe/Lisbon"
    assert (etc / "timezone").read_text() == "Europe/Lisbon\n"
    # 50-branding-background, 50-branding-fbe
    assets = var / "lib/eos-image-defaults/branding/assets"
    assert (assets / "background.png").read_text() == "not really a png\n"
    assert (etc / "gnome-initial-setup/vendor.conf").read_bytes() == inputs["fbe"].read_bytes()
    # 50-metrics-urls: an existing key replaced, a missing file created
    metrics = (etc / "metrics/eos-metrics-permissions.conf").read_text()
    assert metrics == "[global]\nenabled=true\nserver_url=https://metrics.example.invalid\n"
    assert (etc / "eos-phone-home.conf").read_text() == (
        "[global]\nhost=https://activation.example.invalid\n")
    # 50-reclaim-swap-stamp, 50-update-done-stamp: the time of /usr
    usr_time = (deploy / "usr").stat().st_mtime
    for stamp in (var / "eos-swap-reclaimed", etc / ".updated", var / ".updated"):
        assert stamp.stat().st_mtime == usr_time, stamp
    # 60-chromium-policies
    for policies in (etc / "opt/chrome/policies", etc / "chromium-browser/policies"):
        assert (policies / "managed/eib-managed.json").read_bytes() == (
            inputs["managed"].read_bytes())
        assert (policies / "recommended/eib-recommended.json").is_file()
    # 60-dconf-prepare staged the files on the group's /tmp, 61-dconf-compile.chroot
    # compiled them inside the OS; the staging area is not shipped.
    assert (etc / "eib-test-dconf-args").read_text() == (
        "compile /var/lib/eos-image-defaults/settings /tmp/dconf-overrides\n")
    staged = (etc / "eib-test-dconf-staged").read_text()
    assert "50-eib-test.gschema.override" in staged and "eib-test-locks" in staged
    assert (var / "lib/eos-image-defaults/settings").read_text() == "compiled\n"
    assert not (deploy / "tmp/dconf-overrides").exists()
    # 63-icon-grid
    grid = var / "lib/eos-image-defaults/icon-grid/icon-grid-C.json"
    assert grid.read_bytes() == inputs["grid"].read_bytes()
    # 50-initramfs-append: a gzip'd newc cpio with the watermark
    append = build.work / "sysroot/boot/initramfs-append"
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=gzip.decompress(
        append.read_bytes()), capture_output=True, check=True).stdout.decode().split()
    assert "eos-customization/plymouth/themes/spinner/watermark.png" in listing
    # Manifest fragments: 50-language, 50-locales, 70-ostree-manifest, and
    # 70-flatpak-manifest's empty structure with Flatpaks disabled.
    manifest = json.loads(next(build.out.glob("*.manifest.json")).read_text())
    assert manifest["image_language"] == "pt_BR.utf8"
    assert manifest["flatpak_locales"] == ["pt", "en"]
    assert manifest["flatpak"] == {"remotes": {}, "runtimes": {}, "apps": {}}
    ostree = manifest["ostree"]
    assert ostree["commit"] == served.good_commit and deploy.name.startswith(ostree["commit"])
    assert (ostree["remote"], ostree["os"], ostree["ref"]) == (
        "eibtest", "eibtest", "os/eibtest/amd64/master")
    assert ostree["url"] == "https://updates.example.invalid/ostree"
    assert ostree["collection-id"] is None
    assert ostree["version"] == "2.0"  # no VERSION in os-release: the commit's version
    assert ostree["date"].endswith("+0000") and "T" in ostree["date"]
    # 70-flatpak-appstream-catalog: an empty catalog named after the build
    catalog = next(build.out.glob("*.appstream.xml.gz"))
    outversion = catalog.name.removesuffix(".appstream.xml.gz")
    assert f'<components version="0.8" origin="{outversion}"' in gzip.decompress(
        catalog.read_bytes()).decode()
    assert not list(build.out.glob("*.appstream.xml"))
    # publish/40-build-log: the build log beside the image outputs
    log = (build.out / f"{outversion}.build.txt").read_text()
    assert "hook image/63-icon-grid" in log


@pytest.mark.parametrize(("hook", "option", "text", "message"), [
    ("50-branding-fbe", "branding_fbe_config", "[Page]\nskip=goa\n",
     "You should skip the FBE language page if not defining initial languages"),
    ("63-icon-grid", "icon_grid", '{"desktop": [}\n', "Invalid JSON file: "),
])
def test_a_bad_input_fails_the_build_naming_the_hook(
    build: Build, served: Served, signing: Signing, hook: str, option: str, text: str,
    message: str,
) -> None:
    bad = build.top / "inputs" / "bad"
    bad.parent.mkdir(parents=True)
    bad.write_text(text)
    image: dict[str, Any] = {"icon_grid": [str(bad)]} if option == "icon_grid" else {}
    extra = {option: str(bad)} if option != "icon_grid" else {}
    proc = _run(build, served, signing, ["05-eib-test-inputs", hook], image, extra)
    assert proc.returncode != 0
    assert f"hook image/{hook} exited with status 1" in proc.stderr, proc.stderr[-3000:]
    log = (build.out / "build.txt").read_text()
    assert message in log
