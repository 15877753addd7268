"""The demo OS's initramfs: busybox and a small `/init` that does the part of
`ostree-prepare-root` a demo needs.

Boot contract (what the bootloader or QEMU must pass on the kernel command
line):

* `root=LABEL=ostree` (default when absent) or `root=/dev/...`: the ext4
  file system holding the OSTree sysroot;
* `ostree=/ostree/boot.N/<os>/<bootcsum>/<serial>`: the deployment, exactly
  as `ostree admin deploy` writes it into the BLS entry's `options`;
* `console=ttyS0` to see the output on a serial console;
* `rd.shell` drops to a busybox shell instead of powering off on failure.

`/init` mounts the sysroot read-write on `/sysroot`, resolves the `ostree=`
symlink under it, bind-mounts the deployment as the new root (its `/usr`
read-only, its stateroot's `var` on `/var`), moves the sysroot to
`/sysroot` inside it, and `switch_root`s to the OS's `/sbin/init`.
"""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

from eib.demo.cpio import write_gzip_newc
from eib.demo.kernel import Kernel

BUSYBOX = Path("/bin/busybox")

INIT_SCRIPT = r"""#!/bin/sh
# eib demo initramfs: find the OSTree deployment named by ostree= and boot it.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

cmdline=$(cat /proc/cmdline)
fail() {
    echo "eib-demo initramfs: $*"
    case " $cmdline " in *" rd.shell "*) exec sh ;; esac
    poweroff -f
}

root=LABEL=ostree
ostree=
for arg in $cmdline; do
    case "$arg" in
        root=*) root=${arg#root=} ;;
        ostree=*) ostree=${arg#ostree=} ;;
    esac
done

while read -r module; do
    # Some modules do not apply to every machine (crc32c-intel needs SSE4.2).
    insmod "/lib/modules/$module" 2>/dev/null || echo "eib-demo initramfs: $module not loaded"
done </etc/modules.load

tries=0
while :; do
    case "$root" in
        LABEL=*|UUID=*) dev=$(findfs "$root" 2>/dev/null) ;;
        *) dev=$root ;;
    esac
    [ -n "$dev" ] && [ -b "$dev" ] && break
    tries=$((tries + 1))
    [ "$tries" -ge 100 ] && fail "no root device $root after 20 s"
    sleep 0.2
done

mkdir -p /sysroot /newroot
mount -t ext4 -o rw "$dev" /sysroot || fail "cannot mount $dev"
[ -n "$ostree" ] || fail "no ostree= kernel argument"
deploy=$(readlink -f "/sysroot$ostree")
[ -n "$deploy" ] && [ -d "$deploy/usr" ] || fail "ostree=$ostree is not a deployment"
stateroot=${deploy%/deploy/*}

mount --bind "$deploy" /newroot || fail "cannot bind-mount $deploy"
mount --bind /newroot/usr /newroot/usr
mount -o remount,bind,ro /newroot/usr
[ -d "$stateroot/var" ] && mount --bind "$stateroot/var" /newroot/var
mount --move /sysroot /newroot/sysroot || fail "cannot move the sysroot"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
"""


def build_initramfs(kernel: Kernel, work: Path, dest: Path) -> None:
    """Write the gzip'd initramfs for `kernel` to `dest`, staging in `work`."""
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("bin", "dev", "etc", "proc", "sys", "sysroot", "newroot"):
        (work / sub).mkdir(parents=True)
    shutil.copyfile(BUSYBOX, work / "bin" / "busybox")
    (work / "bin" / "busybox").chmod(0o755)
    (work / "bin" / "sh").symlink_to("busybox")
    init = work / "init"
    init.write_text(INIT_SCRIPT)
    init.chmod(0o755)

    module_dir = work / "lib" / "modules"
    load_lines = []
    for rel in kernel.modules:
        source = kernel.modules_root / rel
        name = rel.removesuffix(".xz")
        target = module_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = source.read_bytes()
        target.write_bytes(lzma.decompress(data) if rel.endswith(".xz") else data)
        target.chmod(0o644)
        load_lines.append(name)
    (work / "etc" / "modules.load").write_text("\n".join(load_lines) + "\n")

    for path in [work, *work.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    write_gzip_newc(work, dest)
