"""Bootstrapping the Debian tree with mmdebstrap.

mmdebstrap is reproducible by design when SOURCE_DATE_EPOCH is set, which
is what makes "same packages in, same OSTree commit out" hold.  Downloaded
packages are kept in a cache directory (synced in before and out after the
bootstrap) so a rebuild fetches nothing it already has.

Kernel modules no virtual or ordinary PC needs (sound, GPU, wireless, …)
are never unpacked, and dracut is configured before the kernel is installed,
so the kernel's own postinst makes the one generic initramfs, with ostree's
module, which runs `ostree-prepare-root` from the `ostree=` kernel argument.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from eib.demo.debian.mirror import Source, scrub
from eib.errors import BuildError

log = logging.getLogger("eib.demo.debian")

SUITE = "bookworm"

PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "linux-image-amd64",
    "dracut",
    "ostree",
    "ostree-boot",
    "flatpak",
    "python3",
    "python3-gi",
    "gir1.2-ostree-1.0",
    "gir1.2-flatpak-1.0",
    "locales",
    "tzdata",
    "kmod",
)

# No documentation, manuals or translations: the OS boots and runs apps,
# nobody reads man pages in it.  Copyright files stay (licences).
DPKG_OPTIONS: tuple[str, ...] = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)

# Kernel module trees that no QEMU guest or headless PC image of this OS uses.
TRIMMED_MODULES: tuple[str, ...] = (
    "kernel/sound",
    "kernel/drivers/gpu",
    "kernel/drivers/media",
    "kernel/drivers/net/wireless",
    "kernel/drivers/infiniband",
    "kernel/drivers/staging",
    "kernel/drivers/iio",
    "kernel/drivers/isdn",
    "kernel/net/bluetooth",
    "kernel/net/wireless",
    "kernel/net/mac80211",
)

INITRAMFS = "boot/initramfs-eib.img"

# dracut's settings, in place before the kernel's postinst (and dpkg's
# trigger) makes the one initramfs: generic, reproducible, with ostree's
# module (ostree-prepare-root).
DRACUT_CONF = """hostonly="no"
reproducible="yes"
early_microcode="no"
add_dracutmodules+=" ostree "
omit_dracutmodules+=" plymouth "
"""

ESSENTIAL = """set -eu
mkdir -p "$1/etc/dracut.conf.d"
cat > "$1/etc/dracut.conf.d/90-eib.conf" <<'EOF'
{conf}EOF
"""

CUSTOMIZE = r"""set -eu
root=$1
kver=$(ls "$root/lib/modules" | sort | tail -n 1)
mv "$root/boot/initrd.img-$kver" "$root/{initramfs}"
"""


def essential_script() -> str:
    return ESSENTIAL.format(conf=DRACUT_CONF)


def customize_script() -> str:
    return CUSTOMIZE.format(initramfs=INITRAMFS)


def module_excludes() -> list[str]:
    """dpkg path excludes for TRIMMED_MODULES: never unpacked, so depmod and
    dracut never see them."""
    return [
        f"path-exclude={prefix}/lib/modules/*/{tree}/*"
        for tree in TRIMMED_MODULES
        for prefix in ("", "/usr")
    ]


def bootstrap(dest: Path, sources: list[Source], deb_cache: Path, epoch: int) -> None:
    """mmdebstrap a minbase Debian with PACKAGES into `dest` (must not exist)."""
    if shutil.which("mmdebstrap") is None:
        raise BuildError(
            "mmdebstrap is not installed (apt-get install mmdebstrap, or run ./install.sh)",
            stage="demo",
            step="debian",
        )
    deb_cache.mkdir(parents=True, exist_ok=True)
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
        f"--include={','.join(PACKAGES)}",
        *[f"--dpkgopt={opt}" for opt in (*DPKG_OPTIONS, *module_excludes())],
        f"--essential-hook={essential_script()}",
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
        f"--setup-hook=sync-in {deb_cache} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {deb_cache}",
        "--skip=essential/unlink",
        f"--customize-hook={customize_script()}",
        SUITE,
        str(dest),
        "-",
    ]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C.UTF-8"}
    env.pop("TMPDIR", None)
    log.info("bootstrapping Debian %s (%d packages asked for)", SUITE, len(PACKAGES))
    stdin = "".join(s.line() + "\n" for s in sources)
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(scrub(proc.stderr, sources).strip().splitlines()[-15:])
        raise BuildError(f"mmdebstrap failed:\n{tail}", stage="demo", step="debian")
