"""The GRUB images the demo OS ships work as docs/demo.md says: on a GPT disk
(ESP, BIOS boot, root ext4 labelled `ostree`), both find the root by label,
read `/boot/grub/grub.cfg` from it and can load the kernel and initramfs.

The grub.cfg here loads them and then reboots instead of booting (QEMU's
`-no-reboot` ends the run): the kernel boot itself is test_demo_boot's job.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from eib.demo import OSTREE_REF, DemoPaths

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
MARKER = "EIB-GRUB-LOADED"
MIB = 1024 * 1024
ESP_START, BIOS_START, ROOT_START = 1 * MIB, 33 * MIB, 34 * MIB
ROOT_SIZE = 48 * MIB

GRUB_CFG = f"""serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
echo "root=$root"
linux /boot/vmlinuz console=ttyS0
initrd /boot/initramfs.img
echo "{MARKER}"
reboot
"""


def run(*args: str | Path, input: bytes | None = None) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, input=input)


def cat(demo: DemoPaths, path: str, dest: Path) -> Path:
    with open(dest, "wb") as out:
        subprocess.run(
            ["ostree", f"--repo={demo.ostree_repo}", "cat", OSTREE_REF, path],
            stdout=out,
            check=True,
        )
    return dest


def install_bios(disk: Path, boot_img: Path, core_img: Path) -> None:
    """What docs/demo.md tells the disk assembler to do for BIOS."""
    sector = BIOS_START // 512
    core = bytearray(core_img.read_bytes())
    struct.pack_into("<Q", core, 0x1F4, sector + 1)
    boot = bytearray(boot_img.read_bytes())
    struct.pack_into("<Q", boot, 0x5C, sector)
    with open(disk, "r+b") as out:
        out.write(boot[:440])
        out.seek(BIOS_START)
        out.write(core)


@pytest.fixture(scope="module")
def grub_disk(demo: DemoPaths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("grub")
    kver = demo.kernel_version
    root = work / "root"
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    cat(demo, f"/usr/lib/modules/{kver}/vmlinuz", root / "boot" / "vmlinuz")
    cat(demo, f"/usr/lib/modules/{kver}/initramfs.img", root / "boot" / "initramfs.img")
    efi = cat(demo, "/usr/lib/grub/x86_64-efi/grubx64.efi", work / "grubx64.efi")
    boot_img = cat(demo, "/usr/lib/grub/i386-pc/boot.img", work / "boot.img")
    core_img = cat(demo, "/usr/lib/grub/i386-pc/core.img", work / "core.img")

    esp = work / "esp.img"
    run("mkfs.vfat", "-C", esp, str((BIOS_START - ESP_START) // 1024))
    run("mmd", "-i", esp, "::EFI", "::EFI/BOOT")
    run("mcopy", "-i", esp, efi, "::EFI/BOOT/BOOTX64.EFI")
    rootfs = work / "root.img"
    run("mke2fs", "-q", "-t", "ext4", "-L", "ostree", "-d", root, rootfs, f"{ROOT_SIZE // 1024}k")

    disk = work / "disk.img"
    with open(disk, "wb") as out:
        out.truncate(ROOT_START + ROOT_SIZE + MIB)
    layout = (
        "label: gpt\n"
        f"start={ESP_START // 512}, size={(BIOS_START - ESP_START) // 512},"
        " type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
        f"start={BIOS_START // 512}, size={MIB // 512},"
        " type=21686148-6449-6E6F-744E-656564454649\n"
        f"start={ROOT_START // 512}, size={ROOT_SIZE // 512},"
        " type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\n"
    )
    run("sfdisk", "-q", disk, input=layout.encode())
    for image, offset in ((esp, ESP_START), (rootfs, ROOT_START)):
        run("dd", f"if={image}", f"of={disk}", "bs=1M", f"seek={offset // MIB}", "conv=notrunc")
    install_bios(disk, boot_img, core_img)
    return disk


def boot(disk: Path, tmp_path: Path, *firmware: str) -> str:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed")
    snapshot = ["-drive", f"file={disk},if=virtio,format=raw,snapshot=on"]
    proc = subprocess.run(
        [QEMU, "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot", *firmware, *snapshot],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return proc.stdout.decode(errors="replace")


@pytest.mark.boot
@pytest.mark.slow
def test_grubx64_efi_finds_root_by_label_and_loads_kernel(grub_disk: Path, tmp_path: Path) -> None:
    if not OVMF_CODE.is_file():
        pytest.skip("OVMF is not installed")
    shutil.copyfile(OVMF_VARS, tmp_path / "vars.fd")
    log = boot(
        grub_disk,
        tmp_path,
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={tmp_path / 'vars.fd'}",
    )  # fmt: skip
    assert MARKER in log, log[-3000:]
    assert "root=hd0,gpt3" in log


@pytest.mark.boot
@pytest.mark.slow
def test_bios_core_img_finds_root_by_label_and_loads_kernel(
    grub_disk: Path, tmp_path: Path
) -> None:
    log = boot(grub_disk, tmp_path)
    assert MARKER in log, log[-3000:]
    assert "root=hd0,gpt3" in log
