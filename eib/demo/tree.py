"""The demo OS's file tree, laid out the way `ostree admin deploy` expects.

* `/usr`: busybox and its applet links, `/usr/sbin/init` (the OS's whole
  init: print the ready marker, power off), `/usr/etc` (the default `/etc`:
  os-release, hostname, passwd, group, localtime), `/usr/lib/os-release`;
* `/usr/lib/modules/<kver>/vmlinuz` and `initramfs.img`: ostree copies them
  to `/boot/ostree/<os>-<bootcsum>/` and writes a BLS entry for them;
* the GRUB images of `eib.demo.grub`;
* `/bin`, `/sbin`, `/lib` → `usr/...`; empty `/sysroot`; `/ostree` →
  `sysroot/ostree`; `/home` → `var/home`; empty `/var`, `/boot`, `/proc`,
  `/sys`, `/dev`, `/run`, `/tmp`.

Modes are set explicitly (files 0644, programs 0755, directories 0755,
`/tmp` 1777) so the umask of the machine that builds it cannot change the
tree checksum.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from eib.demo.grub import install_grub_images
from eib.demo.initramfs import BUSYBOX, build_initramfs
from eib.demo.kernel import Kernel

OS_NAME = "eib-demo"
HOSTNAME = "eib-demo"
PRETTY_NAME = "EIB Demo OS"
OS_VERSION = "1"

# Printed by the OS once it has booted; boot tests wait for it.
READY_MARKER = "EIB-DEMO-READY"

OS_RELEASE = f"""NAME="{PRETTY_NAME}"
ID={OS_NAME}
VERSION_ID={OS_VERSION}
VERSION="{OS_VERSION}"
PRETTY_NAME="{PRETTY_NAME} {OS_VERSION}"
HOME_URL="https://example.invalid/eib-demo"
"""

OS_INIT = f"""#!/bin/sh
# The whole init of the eib demo OS: show that it booted, then power off.
export PATH=/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
[ -s /etc/hostname ] && hostname -F /etc/hostname
PRETTY_NAME=
[ -r /etc/os-release ] && . /etc/os-release
exec >/dev/console 2>&1
echo "{READY_MARKER}"
echo "PRETTY_NAME=$PRETTY_NAME"
echo "HOSTNAME=$(hostname)"
echo "KERNEL=$(uname -r)"
sync
poweroff -f
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"

# Applets that would clash with the OS's own files.
_SKIPPED_APPLETS = {"init", "linuxrc"}
_TOP_LINKS = {
    "bin": "usr/bin",
    "sbin": "usr/sbin",
    "lib": "usr/lib",
    "lib64": "usr/lib",
    "ostree": "sysroot/ostree",
    "home": "var/home",
}
_TOP_DIRS = ("boot", "dev", "proc", "run", "sys", "sysroot", "tmp", "var")
_UTC_ZONE = Path("/usr/share/zoneinfo/Etc/UTC")


def _write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    path.chmod(mode)


def _busybox_links(usr: Path) -> None:
    from eib.tools.run import run

    listing = run([BUSYBOX, "--list-full"]).stdout.split()
    for entry in sorted(set(listing)):
        directory, _, applet = entry.rpartition("/")
        if applet in _SKIPPED_APPLETS or not applet:
            continue
        in_sbin = directory.endswith("sbin")
        link = usr / ("sbin" if in_sbin else "bin") / applet
        if link.exists() or link.is_symlink():
            continue
        link.symlink_to("../bin/busybox" if in_sbin else "busybox")


def build_tree(kernel: Kernel, root: Path, work: Path) -> None:
    """Lay out the whole demo OS in `root` (which must not exist)."""
    root.mkdir(parents=True)
    usr = root / "usr"
    for sub in ("bin", "sbin", "etc", "lib", "share/zoneinfo/Etc"):
        (usr / sub).mkdir(parents=True, exist_ok=True)

    _write(usr / "bin" / "busybox", BUSYBOX.read_bytes(), 0o755)
    _busybox_links(usr)
    _write(usr / "sbin" / "init", OS_INIT, 0o755)

    _write(usr / "lib" / "os-release", OS_RELEASE)
    _write(usr / "etc" / "os-release", OS_RELEASE)
    _write(usr / "etc" / "hostname", HOSTNAME + "\n")
    _write(usr / "etc" / "passwd", PASSWD)
    _write(usr / "etc" / "group", GROUP)
    if _UTC_ZONE.is_file():
        _write(usr / "share" / "zoneinfo" / "Etc" / "UTC", _UTC_ZONE.read_bytes())
    (usr / "share" / "zoneinfo" / "UTC").symlink_to("Etc/UTC")
    (usr / "etc" / "localtime").symlink_to("../usr/share/zoneinfo/Etc/UTC")

    boot_dir = usr / "lib" / "modules" / kernel.version
    boot_dir.mkdir(parents=True)
    shutil.copyfile(kernel.vmlinuz, boot_dir / "vmlinuz")
    (boot_dir / "vmlinuz").chmod(0o644)
    build_initramfs(kernel, work / "initramfs", boot_dir / "initramfs.img")
    (boot_dir / "initramfs.img").chmod(0o644)
    install_grub_images(usr / "lib", work / "grub")

    for name in _TOP_DIRS:
        (root / name).mkdir()
    for name, target in _TOP_LINKS.items():
        (root / name).symlink_to(target)

    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    (root / "tmp").chmod(0o1777)
