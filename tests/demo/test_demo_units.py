"""Module ordering and the initramfs archive writer, checked against the
real tools (`cpio`, apt)."""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import pytest

from eib.demo.cpio import write_gzip_newc
from eib.demo.kernel import kernel_version, load_order, module_name, parse_modules_dep
from eib.errors import BuildError

MODULES_DEP = """\
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
"""


def test_load_order_puts_dependencies_first() -> None:
    deps = parse_modules_dep(MODULES_DEP)
    order = [module_name(p) for p in load_order(("virtio_blk", "ext4", "crc32c-intel"), deps)]
    # modules.dep lists virtio before virtio_ring, but virtio needs virtio_ring.
    assert order.index("virtio_ring") < order.index("virtio") < order.index("virtio_blk")
    assert order[-2] == "ext4" and {"crc16", "mbcache", "jbd2"} < set(order[:-2])
    assert order[-1] == "crc32c_intel"
    assert len(order) == len(set(order))


def test_unknown_module_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="nvme"):
        load_order(("nvme",), parse_modules_dep(MODULES_DEP))


def test_current_kernel_package_names_an_amd64_image(kernel_package: str) -> None:
    # kernel_package is current_kernel_package(), asked once per session.
    assert kernel_package.startswith("linux-image-") and kernel_package.endswith("-amd64")
    assert re.fullmatch(r"\d+\.\d+\S*-amd64", kernel_version(kernel_package))


def test_newc_archive_round_trips_through_cpio_and_is_reproducible(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "init").write_text("#!/bin/sh\necho hi\n")
    (src / "init").chmod(0o755)
    (src / "bin" / "data").write_bytes(bytes(range(256)) * 3 + b"x")
    (src / "bin" / "data").chmod(0o600)
    (src / "bin" / "sh").symlink_to("busybox")
    first, second = tmp_path / "a.gz", tmp_path / "b.gz"
    write_gzip_newc(src, first)
    (src / "init").touch()  # mtimes must not matter
    write_gzip_newc(src, second)
    assert first.read_bytes() == second.read_bytes()

    out = tmp_path / "out"
    out.mkdir()
    listing = subprocess.run(
        ["cpio", "-tv", "--quiet"],
        input=gzip.decompress(first.read_bytes()),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "root" in listing and "bin/sh -> busybox" in listing
    subprocess.run(
        ["cpio", "-id", "--quiet"], input=gzip.decompress(first.read_bytes()), cwd=out, check=True
    )
    assert (out / "init").read_text() == "#!/bin/sh\necho hi\n"
    assert (out / "init").stat().st_mode & 0o777 == 0o755
    assert (out / "bin" / "data").read_bytes() == (src / "bin" / "data").read_bytes()
    assert (out / "bin" / "data").stat().st_mode & 0o777 == 0o600
    assert (out / "bin" / "sh").readlink() == Path("busybox")
