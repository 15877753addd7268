"""The demo OS's kernel: a stock Debian amd64 kernel, fetched from the Debian
archive with apt, trimmed to the handful of modules QEMU needs to find and
mount the root file system.

Only the package archive is needed (no kernel build, no other network), and
the `.deb` is kept in a cache directory so the download happens once per
kernel version.
"""

from __future__ import annotations

import logging
import lzma
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eib.errors import BuildError
from eib.tools.run import run

log = logging.getLogger("eib.demo.kernel")

# The Debian meta-package that always depends on the current amd64 kernel.
KERNEL_META_PACKAGE = "linux-image-amd64"

# What a QEMU guest needs to reach an ext4 root on virtio, SATA (q35) or IDE
# (pc) disks.  Dependencies are added from modules.dep; the crypto modules are
# soft dependencies (ext4 metadata checksums, sd_mod's T10 PI) that
# modules.dep does not list, so they are named here.
BOOT_MODULES: tuple[str, ...] = (
    "crc32c_generic",
    "crc32c-intel",
    "crct10dif_generic",
    "crc64_rocksoft_generic",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "ahci",
    "ata_piix",
    "sd_mod",
    "ext4",
)


# Where the boot modules and all their dependencies live in the package.
MODULE_DIRS: tuple[str, ...] = (
    "kernel/arch/x86/crypto/",
    "kernel/block/",
    "kernel/crypto/",
    "kernel/drivers/ata/",
    "kernel/drivers/block/",
    "kernel/drivers/scsi/",
    "kernel/drivers/virtio/",
    "kernel/fs/ext4/",
    "kernel/fs/jbd2/",
    "kernel/fs/mbcache.ko",
    "kernel/lib/",
)


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel: the image and the boot modules in load order."""

    version: str
    vmlinuz: Path
    # Paths relative to `modules_root` (e.g. `kernel/fs/ext4/ext4.ko`), each
    # after all of its dependencies.
    modules: tuple[str, ...]
    modules_root: Path


def current_kernel_package() -> str:
    """The name of the kernel package the Debian archive currently ships,
    e.g. `linux-image-6.1.0-56-amd64`, read from the local apt lists."""
    proc = run(["apt-cache", "depends", KERNEL_META_PACKAGE], check=False)
    match = re.search(r"Depends:\s*(linux-image-\S+-amd64)\b", proc.stdout or "")
    if proc.returncode != 0 or match is None:
        raise BuildError(
            f"cannot find the current Debian kernel: 'apt-cache depends {KERNEL_META_PACKAGE}'"
            " names no linux-image package (run 'apt-get update' first)",
            stage="demo",
            step="kernel",
        )
    return match.group(1)


def kernel_version(package: str) -> str:
    """`linux-image-6.1.0-56-amd64` → `6.1.0-56-amd64` (the `uname -r`)."""
    return package.removeprefix("linux-image-")


def fetch_kernel_deb(package: str, deb_dir: Path) -> Path:
    """The package's `.deb` in `deb_dir`, downloaded with apt when missing."""
    deb_dir.mkdir(parents=True, exist_ok=True)
    cached = sorted(deb_dir.glob(f"{package}_*_amd64.deb"))
    if cached:
        return cached[-1]
    # A private download dir, renamed into place: concurrent builds sharing
    # `deb_dir` never see a partial file.
    partial = Path(tempfile.mkdtemp(dir=deb_dir, prefix=".download-"))
    try:
        log.info("downloading %s from the Debian archive", package)
        run(["apt-get", "download", package], cwd=partial, timeout=600)
        debs = sorted(partial.glob(f"{package}_*_amd64.deb"))
        if not debs:
            raise BuildError(f"apt-get download {package} produced no .deb", stage="demo")
        final = deb_dir / debs[0].name
        debs[0].replace(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """modules.dep as {module path: [dependency paths]}."""
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        module, _, rest = line.partition(":")
        deps[module.strip()] = rest.split()
    return deps


def module_name(path: str) -> str:
    """`kernel/arch/x86/crypto/crc32c-intel.ko.xz` → `crc32c_intel`."""
    base = path.rsplit("/", 1)[-1]
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def load_order(wanted: tuple[str, ...], deps: dict[str, list[str]]) -> tuple[str, ...]:
    """Module paths for `wanted` and everything they depend on, dependencies
    first (modules.dep is not ordered for loading: `virtio_ring` must precede
    `virtio`, which a depth-first walk guarantees)."""
    by_name = {module_name(path): path for path in deps}
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(path: str) -> None:
        if path in ordered or path in visiting:
            return
        visiting.add(path)
        for dep in deps.get(path, []):
            visit(dep)
        visiting.discard(path)
        ordered.append(path)

    for name in wanted:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            raise BuildError(f"kernel module {name} is not in this kernel", stage="demo")
        visit(path)
    return tuple(ordered)


def _wanted_member(name: str, version: str) -> bool:
    name = name.removeprefix("./")
    if name == f"boot/vmlinuz-{version}":
        return True
    prefix = f"lib/modules/{version}/"
    if not name.startswith(prefix):
        return False
    rel = name[len(prefix) :]
    return rel.startswith("modules.") or any(rel.startswith(d) for d in MODULE_DIRS)


def _extract(deb: Path, version: str, dest: Path) -> None:
    """Extract the kernel image and the module directories in MODULE_DIRS:
    a tenth of the package, so unpacking and cleaning up stay quick."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    log.debug("$ %s | (extract the boot modules)", " ".join(argv))
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if (member.isfile() or member.isdir()) and _wanted_member(member.name, version):
                    tar.extract(member, dest, filter="data")
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise BuildError(f"dpkg-deb cannot read {deb}: {err.strip()}", stage="demo", step="kernel")


def _declared_depends(path: Path) -> list[str]:
    """The `depends=` field of a module's .modinfo section."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        data = lzma.decompress(data)
    match = re.search(rb"\0depends=([^\0]*)\0", data)
    return [d for d in match.group(1).decode().split(",") if d] if match else []


def unpack_kernel(deb: Path, version: str, dest: Path) -> Kernel:
    """Unpack the kernel and its storage modules from `deb` into `dest` and
    work out the boot modules' load order.

    The package ships no modules.dep (it is made at install time), so
    `depmod -b` makes one for the unpacked part; each module's own `depends=`
    list then confirms that no dependency lives outside that part.
    """
    _extract(deb, version, dest)
    modules_root = dest / "lib" / "modules" / version
    vmlinuz = dest / "boot" / f"vmlinuz-{version}"
    if not vmlinuz.is_file() or not modules_root.is_dir():
        raise BuildError(f"{deb.name} holds no kernel {version}", stage="demo", step="kernel")
    run(["depmod", "-b", dest, version])
    deps = parse_modules_dep((modules_root / "modules.dep").read_text())
    modules = load_order(BOOT_MODULES, deps)
    names = {module_name(m) for m in modules}
    for rel in modules:
        declared = _declared_depends(modules_root / rel)
        missing = [d for d in declared if d.replace("-", "_") not in names]
        if missing:
            raise BuildError(
                f"kernel module {module_name(rel)} needs {', '.join(missing)}, not found"
                " in the unpacked module directories",
                stage="demo",
                step="kernel",
            )
    log.debug("boot modules: %s", " ".join(module_name(m) for m in modules))
    return Kernel(version=version, vmlinuz=vmlinuz, modules=modules, modules_root=modules_root)
