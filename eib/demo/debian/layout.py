"""Turning a bootstrapped Debian tree into an OSTree-deployable tree.

What OSTree-based distributions do (see ostree's "adapting existing
distributions"): `/etc` becomes `/usr/etc` (the default config merged into
each deployment's `/etc`), `/var` is emptied and recreated at boot by
systemd-tmpfiles, state directories (`/home`, `/root`, `/opt`, `/srv`,
`/mnt`, `/usr/local`) become links into `/var`, the kernel and initramfs move
to `/usr/lib/modules/<kver>/` for `ostree admin deploy`, `/ostree` points into
`/sysroot`, and `/boot` stays empty.  The tree also gets the units that show
a boot worked, and GRUB images for the disk assembler.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from eib.demo.debian.bootstrap import INITRAMFS
from eib.demo.grub import install_grub_images
from eib.errors import BuildError

OS_NAME = "eib-debian"
PRETTY_NAME = "EIB Debian OS"
OS_VERSION = "12"
HOSTNAME = "eib-debian"
READY_MARKER = "EIB-OS-READY"
FLATPAK_MARKER = "EIB-FLATPAK-OK"

OS_RELEASE = f"""PRETTY_NAME="{PRETTY_NAME} {OS_VERSION}"
NAME="{PRETTY_NAME}"
ID={OS_NAME}
ID_LIKE=debian
VERSION_ID="{OS_VERSION}"
VERSION="{OS_VERSION} (bookworm)"
VERSION_CODENAME=bookworm
HOME_URL="https://example.invalid/eib-debian"
"""

HOSTS = f"""127.0.0.1\tlocalhost
127.0.1.1\t{HOSTNAME}
::1\t\tlocalhost ip6-localhost ip6-loopback
ff02::1\t\tip6-allnodes
ff02::2\t\tip6-allrouters
"""

# State that lives in /var, made at boot by systemd-tmpfiles.
TMPFILES = """# eib: the OSTree layout's state directories (the tree's /var is empty).
d /var/home 0755 root root -
d /var/roothome 0700 root root -
d /var/opt 0755 root root -
d /var/srv 0755 root root -
d /var/mnt 0755 root root -
d /var/usrlocal 0755 root root -
d /var/usrlocal/bin 0755 root root -
d /var/usrlocal/sbin 0755 root root -
d /var/lib/flatpak 0755 root root -
d /run/media 0755 root root -
"""

STATE_LINKS = {
    "home": "var/home",
    "root": "var/roothome",
    "opt": "var/opt",
    "srv": "var/srv",
    "mnt": "var/mnt",
    "media": "run/media",
    "ostree": "sysroot/ostree",
}

# Runs every installed Flatpak app once at boot, output on the console.
FLATPAK_UNIT = """[Unit]
Description=Run the installed Flatpak apps once (eib boot check)
After=multi-user.target local-fs.target
ConditionPathIsDirectory=/var/lib/flatpak/app

[Service]
Type=oneshot
RuntimeDirectory=eib-flatpak
Environment=HOME=/run/eib-flatpak XDG_RUNTIME_DIR=/run/eib-flatpak
ExecStart=/usr/libexec/eib/run-flatpak-apps
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

RUN_APPS = """#!/bin/sh
# Start each installed app; the apps print their own marker.
for app in $(flatpak list --system --app --columns=application); do
    flatpak run --system "$app" || echo "eib: flatpak run $app failed ($?)"
done
"""

READY_UNIT = """[Unit]
Description=Report that the OS has booted (eib boot check)
After=multi-user.target eib-flatpak-apps.service

[Service]
Type=simple
ExecStart=/usr/libexec/eib/os-ready
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

# The booted deployment's checksum from `ostree admin status` ("* os csum.0").
_BOOTED_SED = r"s/^\* [^ ]* \([0-9a-f]\{64\}\)\..*/\1/p"

# Not a oneshot: `is-system-running --wait` waits for the boot's jobs to end,
# and a oneshot's own job would keep the boot from ending.
OS_READY = f"""#!/bin/sh
state=$(systemctl is-system-running --wait)
booted=$(ostree admin status 2>/dev/null | sed -n '{_BOOTED_SED}')
echo "{READY_MARKER} state=$state deployment=$booted" > /dev/console
if [ "$state" != running ]; then
    systemctl --failed --no-legend --plain > /dev/console 2>&1
fi
case " $(cat /proc/cmdline) " in
    *" eib.keep-running "*) ;;
    *) systemctl poweroff --no-block ;;
esac
"""


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def _kernel_version(root: Path) -> str:
    versions = sorted(p.name for p in (root / "usr" / "lib" / "modules").iterdir())
    if len(versions) != 1:
        raise BuildError(f"expected one kernel in the tree, found {versions}", stage="demo")
    return versions[0]


def _move_kernel(root: Path, kver: str) -> None:
    modules = root / "usr" / "lib" / "modules" / kver
    shutil.move(root / "boot" / f"vmlinuz-{kver}", modules / "vmlinuz")
    shutil.move(root / INITRAMFS, modules / "initramfs.img")
    (modules / "vmlinuz").chmod(0o644)
    (modules / "initramfs.img").chmod(0o644)
    shutil.rmtree(root / "boot")
    (root / "boot").mkdir()


def _scrub(root: Path) -> None:
    """Remove what is host- or build-specific: apt sources (they name the
    mirror), caches, logs, the machine id, byte-code caches."""
    etc = root / "etc"
    for name in ("apt/sources.list", "resolv.conf", "hostname", "hosts", "machine-id"):
        (etc / name).unlink(missing_ok=True)
    shutil.rmtree(etc / "apt" / "sources.list.d", ignore_errors=True)
    (etc / "apt" / "sources.list.d").mkdir(parents=True)
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(root / "var")
    (root / "var").mkdir()
    for top in ("tmp", "run", "dev", "proc", "sys"):
        shutil.rmtree(root / top, ignore_errors=True)
        (root / top).mkdir()
    # OSTree commits only files, links and directories (no device nodes,
    # fifos or sockets).
    for path in root.rglob("*"):
        if not (path.is_symlink() or path.is_file() or path.is_dir()):
            path.unlink()


def _state_links(root: Path) -> None:
    for name, target in STATE_LINKS.items():
        path = root / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.symlink_to(target)
    local = root / "usr" / "local"
    shutil.rmtree(local, ignore_errors=True)
    local.symlink_to("../var/usrlocal")
    (root / "sysroot").mkdir(exist_ok=True)


def _units(root: Path) -> None:
    lib = root / "usr" / "lib"
    _write(lib / "tmpfiles.d" / "eib-ostree.conf", TMPFILES)
    _write(lib / "systemd" / "system" / "eib-flatpak-apps.service", FLATPAK_UNIT)
    _write(lib / "systemd" / "system" / "eib-os-ready.service", READY_UNIT)
    _write(root / "usr" / "libexec" / "eib" / "run-flatpak-apps", RUN_APPS, 0o755)
    _write(root / "usr" / "libexec" / "eib" / "os-ready", OS_READY, 0o755)
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit in ("eib-flatpak-apps.service", "eib-os-ready.service"):
        link = wants / unit
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/lib/systemd/system/{unit}")


def _etc(root: Path) -> None:
    etc = root / "etc"
    _write(root / "usr" / "lib" / "os-release", OS_RELEASE)
    (etc / "os-release").unlink(missing_ok=True)
    (etc / "os-release").symlink_to("../usr/lib/os-release")
    _write(etc / "hostname", HOSTNAME + "\n")
    _write(etc / "hosts", HOSTS)
    _write(etc / "machine-id", "")
    _write(etc / "fstab", "# The root file system is mounted by the initramfs (ostree).\n")
    _write(etc / "locale.conf", "LANG=C.UTF-8\n")
    (etc / "localtime").unlink(missing_ok=True)
    (etc / "localtime").symlink_to("../usr/share/zoneinfo/Etc/UTC")
    _write(etc / "timezone", "Etc/UTC\n")
    shutil.move(etc, root / "usr" / "etc")


def convert(root: Path, work: Path) -> str:
    """Rearrange the bootstrapped `root` in place; returns the kernel version."""
    kver = _kernel_version(root)
    _move_kernel(root, kver)
    _scrub(root)
    _state_links(root)
    _units(root)
    install_grub_images(root / "usr" / "lib", work / "grub")
    _etc(root)
    root.chmod(0o755)
    (root / "tmp").chmod(0o1777)
    return kver
