"""Assemble the deployed sysroot into a partitioned disk image, then its outputs.

Everything happens on image files: sfdisk writes the table, mke2fs writes the
root file system straight into the image at its offset (`-E offset=`,
`-d sysroot`), mkfs.vfat and mtools build the ESP, and the bootloaders are
written at their offsets. No loop device, no mount, so it runs in containers
and on kernels without vfat or partition scanning, and a failure leaves
nothing to clean up but files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eib.errors import BuildError
from eib.execute import bootloader, legacy_outputs
from eib.execute.disk_layout import (
    DOS_RESIZE_MARKER,
    DOS_RESIZE_MARKER_OFFSET,
    SECTOR,
    Layout,
    MiB,
    derived_hex,
    derived_uuid,
    extra_space,
    measure_tree,
    plan_layout,
    root_fs_size,
    sfdisk_script,
)
from eib.execute.inroot import resolve_in_root
from eib.execute.mtimes import clamp_mtimes
from eib.execute.outputs import (
    Published,
    compress_image,
    finish_file,
    make_zip,
    run_parallel,
    write_checksum,
)
from eib.execute.progress import Monitor, NullMonitor
from eib.execute.progress_report import file_bytes, watching
from eib.execute.progress_report import tree_bytes as dir_bytes
from eib.execute.safedirs import create_new
from eib.model.plan import Plan
from eib.tools import compress, ext4, qemu_img, sfdisk, vfat, xorriso
from eib.tools.gpg import Signer
from eib.tools.run import run

log = logging.getLogger("eib.execute.disk")

STAGE = "image"
ROOT_LABEL = "ostree"
ESP_LABEL = "EFI"
EXT4_FEATURES = {"arm64": "dir_index,^huge_file,^64bit"}
EXT4_FEATURES_DEFAULT = "dir_index,^huge_file"


@dataclass
class ImageResult:
    """What the image step produced, for the executor and the manifest stage."""

    raw_image: Path
    layout: Layout
    tree_bytes: int
    files: list[Path] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_file: Path | None = None


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"


def find_deployments(sysroot: Path, os_name: str | None = None) -> list[Path]:
    """Deployment checkouts (`ostree/deploy/<os>/deploy/<csum>.<serial>`)."""
    pattern = f"ostree/deploy/{os_name or '*'}/deploy/*.*"
    return sorted(p for p in sysroot.glob(pattern) if p.is_dir())


def check_max_size(layout: Layout, max_size: int | None) -> None:
    if max_size is not None and layout.size > max_size:
        raise BuildError(
            f"the image would be {layout.size} bytes ({human(layout.size)}), more than "
            f"image.max_size {max_size} bytes ({human(max_size)})",
            stage=STAGE,
            step="size",
        )


def prepare_boot_files(
    plan: Plan, sysroot: Path, deployment: Path | None, epoch: int | None = None
) -> None:
    """Put the boot configuration into the sysroot before it is copied."""
    if deployment is None:
        return
    ships_grub = bootloader.bios_images(deployment) is not None or any(
        resolve_in_root(deployment, rel).is_file() for rel, _ in bootloader.GRUB_EFI.values()
    )
    if ships_grub and not plan.image.sdboot:
        cfg = bootloader.write_grub_cfg(sysroot)
        if cfg is not None and epoch is not None and cfg.stat().st_mtime != epoch:
            os.utime(cfg, (epoch, epoch))
    if plan.build.arch == "arm64":
        bootloader.install_uboot_script(deployment, sysroot, plan.build.platform)


def build_esp(
    plan: Plan,
    sysroot: Path,
    deployment: Path | None,
    work_dir: Path,
    size: int,
    seed: str | None,
    epoch: int | None,
) -> Path:
    """The ESP as a FAT image file: EFI loaders, and for systemd-boot the kernels."""
    esp = work_dir / "esp.img"
    esp.unlink(missing_ok=True)
    volume_id = derived_hex(seed, "esp", 8) if seed else None
    vfat.make_vfat(esp, size, label=ESP_LABEL, volume_id=volume_id, epoch=epoch)
    if epoch is not None:
        # mkfs.vfat stamps the label entry with the clock; mtools honours the epoch.
        vfat.set_label(esp, ESP_LABEL, epoch=epoch)
    files = (
        bootloader.efi_files(deployment, plan.build.arch, plan.image.sdboot) if deployment else {}
    )
    staging = work_dir / "esp"
    shutil.rmtree(staging, ignore_errors=True)
    for dest, src in files.items():
        target = staging / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        bootloader.copy_noatime(src, target)
    if plan.image.sdboot:
        _stage_sdboot_entries(sysroot, staging)
    if staging.is_dir() and epoch is not None:
        # mcopy -m keeps these times; FAT has no inode change time to leak.
        for path in [staging, *staging.rglob("*")]:
            os.utime(path, (epoch, epoch))
    if staging.is_dir():
        for top in sorted(staging.iterdir()):
            vfat.copy_in(esp, top, "/", epoch=epoch)
    log.info(
        "ESP: %d files",
        sum(1 for p in staging.rglob("*") if p.is_file()) if staging.is_dir() else 0,
    )
    return esp


def _stage_sdboot_entries(sysroot: Path, staging: Path) -> None:
    """systemd-boot reads entries and kernels from the ESP: copy them there."""
    entries = bootloader.boot_entries(sysroot)
    (staging / "loader" / "entries").mkdir(parents=True, exist_ok=True)
    (staging / "loader" / "loader.conf").write_text("timeout 1\n")
    for entry in entries:
        lines = [f"title {entry.title}", f"version {entry.version}"]
        for key, paths in (("linux", [entry.linux]), ("initrd", entry.initrd)):
            for path in paths:
                rel = bootloader.root_path(sysroot, path).removeprefix("/boot/")
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                bootloader.copy_noatime(sysroot / "boot" / rel, dest)
                lines.append(f"{key} /{rel}")
        lines.append(f"options {entry.options}")
        (staging / "loader" / "entries" / entry.path.name).write_text("\n".join(lines) + "\n")


def _copy_into(image: Path, part_file: Path, offset: int) -> None:
    """Write `part_file` into `image` at `offset`, leaving zero blocks as holes."""
    with part_file.open("rb") as src, image.open("r+b") as dst:
        zero = bytes(MiB)
        dst.seek(offset)
        while chunk := src.read(MiB):
            if chunk == zero[: len(chunk)]:
                dst.seek(len(chunk), 1)
            else:
                dst.write(chunk)


def write_root(
    plan: Plan,
    image: Path,
    layout: Layout,
    sysroot: Path,
    inodes: int | None,
    seed: str | None,
    epoch: int | None,
) -> None:
    part = layout.root
    ext4.make_ext4(
        image,
        offset=part.offset,
        size=part.bytes,
        source=sysroot,
        label=ROOT_LABEL,
        features=EXT4_FEATURES.get(plan.build.arch, EXT4_FEATURES_DEFAULT),
        reserved_percent=1,
        inodes=inodes,
        uuid=derived_uuid(seed, "root-fs") if seed else None,
        hash_seed=derived_uuid(seed, "root-hash") if seed else None,
        fake_time=epoch,
    )
    # ostree marks each deployment immutable; mke2fs -d does not copy inode flags.
    deployments = ["/" + p.relative_to(sysroot).as_posix() for p in find_deployments(sysroot)]
    ext4.set_immutable(image, deployments, offset=part.offset)
    # Installers and eos-metrics read which image a system came from here.
    ext4.set_xattr(image, "/", legacy_outputs.VERSION_XATTR, plan.outputs.outversion,
                   offset=part.offset)
    if epoch is not None:
        ext4.normalize_times(image, epoch, offset=part.offset)


def install_bios_loader(image: Path, layout: Layout, deployment: Path | None) -> bool:
    images = bootloader.bios_images(deployment) if deployment else None
    if images is None:
        return False
    boot_img, core_img = images
    bios = layout.get("bios")
    if bios is not None:
        bootloader.install_bios(image, boot_img, core_img, core_sector=bios.start, room=bios.bytes)
    else:
        first = layout.partitions[0].start
        bootloader.install_bios(image, boot_img, core_img, core_sector=1, room=(first - 1) * SECTOR)
    return True


def assemble_image(
    plan: Plan,
    sysroot: Path,
    output_dir: Path,
    work_dir: Path,
    manifest_dir: Path,
    *,
    seed: str | None = None,
    source_date_epoch: int | None = None,
    monitor: Monitor | None = None,
) -> ImageResult:
    """Build the disk image of `sysroot` and every output the plan asks for.

    `seed` (e.g. the plan digest) fixes every UUID, volume id and hash seed,
    and `source_date_epoch` every file system time, so that two builds of
    the same tree can be byte-identical.
    """
    started = time.monotonic()
    output_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    deployments = find_deployments(sysroot, plan.ostree.os) or find_deployments(sysroot)
    deployment = deployments[0] if deployments else None
    if deployment is None:
        log.warning("no ostree deployment under %s: no bootloader will be installed", sysroot)

    # A missing signing key should fail the build before minutes of work, not after.
    image = plan.image
    signer = Signer(image.signing_keyid, image.gpg_homedir or None) if image.signing_keyid else None
    prepare_boot_files(plan, sysroot, deployment, source_date_epoch)
    if source_date_epoch is not None:
        clamped = clamp_mtimes(sysroot, source_date_epoch)
        log.info("clamped %d modification times to %d", clamped, source_date_epoch)
    tree_bytes, inode_count = measure_tree(sysroot)
    free = extra_space(tree_bytes, plan.image.extra_space)
    fs_size, force_inodes = root_fs_size(tree_bytes, inode_count, free)
    layout = plan_layout(
        arch=plan.build.arch,
        platform=plan.build.platform,
        table=plan.image.partition_table,
        root_bytes=fs_size,
        rootfs_resize=plan.image.rootfs_resize,
        sdboot=plan.image.sdboot,
    )
    log.info(
        "image: tree %s + free %s → %s (%s table, %d partitions)",
        human(tree_bytes),
        human(free),
        human(layout.size),
        layout.table,
        len(layout.partitions),
    )
    check_max_size(layout, plan.image.max_size)

    raw = work_dir / plan.outputs.image
    raw.unlink(missing_ok=True)
    with create_new(raw) as handle:
        handle.truncate(layout.size)
    sfdisk.write_table(raw, sfdisk_script(layout, seed))
    if layout.resize_marker:
        with raw.open("r+b") as handle:
            handle.seek(DOS_RESIZE_MARKER_OFFSET)
            handle.write(bytes([DOS_RESIZE_MARKER]))

    monitor = monitor or NullMonitor()
    with watching(monitor, "populate root fs", lambda: file_bytes(raw), tree_bytes):
        write_root(plan, raw, layout, sysroot, force_inodes, seed, source_date_epoch)
    esp_part = layout.get("esp")
    esp_file: Path | None = None
    if esp_part is not None:
        esp_file = build_esp(
            plan, sysroot, deployment, work_dir, esp_part.bytes, seed, source_date_epoch
        )
        _copy_into(raw, esp_file, esp_part.offset)
    bios = install_bios_loader(raw, layout, deployment)
    ext4.check_ext4(raw, layout.root.offset)
    log.info("assembled %s in %.1f s (BIOS loader: %s)", raw.name, time.monotonic() - started, bios)

    result = ImageResult(raw_image=raw, layout=layout, tree_bytes=tree_bytes)
    with watching(monitor, "compress and sign", lambda: dir_bytes(output_dir)):
        images = publish_outputs(
            plan, raw, output_dir, work_dir, esp_file, source_date_epoch, sysroot, deployment,
            signer,
        )
    manifest = {"images": {k: v.manifest() for k, v in images.items()}}
    manifest["images"]["full"]["partition_table"] = layout.table
    manifest["images"]["full"]["partitions"] = [
        {"role": p.role, "start": p.start, "size": p.size, "type": p.type, "attrs": list(p.attrs)}
        for p in layout.partitions
    ]
    manifest_file = manifest_dir / "images.json"
    manifest_file.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    result.manifest = manifest
    result.manifest_file = manifest_file
    for record in images.values():
        result.files += [record.path, record.checksum]
        if record.signature:
            result.files.append(record.signature)
        result.files += record.companions
    if esp_file is not None:
        esp_file.unlink(missing_ok=True)
    shutil.rmtree(work_dir / "esp", ignore_errors=True)
    log.info("image outputs done in %.1f s", time.monotonic() - started)
    return result


def publish_outputs(
    plan: Plan,
    raw: Path,
    output_dir: Path,
    work_dir: Path,
    esp_file: Path | None,
    epoch: int | None,
    sysroot: Path,
    deployment: Path | None,
    signer: Signer | None,
) -> dict[str, Published]:
    """Compressed image (+ size, checksums, signatures), qcow2, ISO, boot.zip, OVF zip."""
    image = plan.image
    comp = compress.compressor(image.compression)
    compressed = output_dir / (plan.outputs.image + comp.suffix)
    if plan.outputs.compressed and plan.outputs.compressed.endswith(comp.suffix):
        compressed = output_dir / plan.outputs.compressed
    raw_name = plan.outputs.image
    raw_sig = output_dir / (raw_name + ".asc")
    extracted = raw.stat().st_size
    size_file = legacy_outputs.write_size(compressed, extracted)

    def full() -> Published:
        record, raw_digest = compress_image(raw, compressed, image.compression, signer, raw_sig)
        raw_sum = write_checksum(output_dir / raw_name, raw_digest)
        record.companions = [size_file, raw_sum] + ([raw_sig] if signer else [])
        record.extra = {
            "compression_type": image.compression,
            "compressed_size": record.size,
            "extracted_file": raw_name,
            "extracted_size": extracted,
            "extracted_sha256": raw_digest,
            "extracted_checksum": raw_sum.name,
            "extracted_signature": raw_sig.name if signer else None,
            "size_file": size_file.name,
        }
        return record

    jobs = {"full": full}
    base = plan.outputs.outversion
    if image.qcow2:

        def qcow2() -> Published:
            dest = output_dir / f"{base}.qcow2"
            qemu_img.convert_qcow2(raw, dest, extra=image.qcow2_extra)
            return _sized(finish_file("qcow2", dest, signer,
                                      virtual_size=qemu_img.virtual_size(dest)))

        jobs["qcow2"] = qcow2
    if image.boot_zip:

        def boot_zip() -> Published:
            dest = output_dir / f"{base}.boot.zip"
            _make_boot_zip(esp_file, sysroot, deployment, work_dir, dest, epoch)
            return finish_file("boot", dest, signer, compression_type="zip")

        jobs["boot"] = boot_zip
    results = run_parallel(jobs)
    if image.iso:
        # The ISO carries the published image, so it comes last.
        dest = output_dir / f"{base}.iso"
        _make_iso(results["full"], esp_file, work_dir, dest, base, epoch)
        results["iso"] = _sized(finish_file(
            "iso", dest, signer, compression_type="iso",
            extracted_size=results["full"].extra["extracted_size"],
        ))
    if image.vm_image:
        # Grows the raw image for a moment: after the jobs that read it.
        from eib.execute.ovf import make_ovf_zip

        dest = output_dir / f"{base}.ovf.zip"
        total = make_ovf_zip(raw, results["full"].extra["extracted_sha256"], base, work_dir,
                             dest, epoch)
        record = finish_file("ovfzip", dest, signer, compression_type="zip",
                             extracted_size=total)
        record.companions.append(legacy_outputs.write_size(dest, total))
        results["ovfzip"] = record
    for record in results.values():
        record.extra.setdefault("compressed_size", record.size)
        legacy_outputs.tag_version(record.path, base)
    return results


def _sized(record: Published) -> Published:
    """Add the legacy `.size` file (the file's own byte count) to an uncompressed output."""
    record.companions.append(legacy_outputs.write_size(record.path, record.size))
    return record


def _esp_tree(esp_file: Path | None, dest: Path) -> None:
    """Extract the ESP's files (what mtools sees) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if esp_file is None:
        return
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run(["mcopy", "-s", "-n", "-m", "-i", esp_file, "::/*", dest], env=env, check=False)


def _make_boot_zip(
    esp_file: Path | None,
    sysroot: Path,
    deployment: Path | None,
    work_dir: Path,
    dest: Path,
    epoch: int | None,
) -> None:
    """EFI loaders (the ESP's tree), grub.cfg and GRUB's BIOS images, as the
    legacy boot.zip had them for installers and dual-boot setups."""
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        tree = Path(tmp)
        _esp_tree(esp_file, tree)
        grub_cfg = sysroot / "boot" / "grub" / "grub.cfg"
        if grub_cfg.is_file():
            (tree / "grub").mkdir(exist_ok=True)
            bootloader.copy_noatime(grub_cfg, tree / "grub" / "grub.cfg")
        bios = resolve_in_root(deployment, bootloader.GRUB_BIOS_DIR) if deployment else None
        if deployment is not None and bios is not None and bios.is_dir():
            (tree / "grub" / "i386-pc").mkdir(parents=True, exist_ok=True)
            for name in ("boot.img", "core.img"):
                src = resolve_in_root(deployment, f"{bootloader.GRUB_BIOS_DIR}/{name}")
                if src.is_file():
                    bootloader.copy_noatime(src, tree / "grub" / "i386-pc" / name)
        make_zip(tree, dest, epoch)


def _make_iso(
    full: Published,
    esp_file: Path | None,
    work_dir: Path,
    dest: Path,
    base: str,
    epoch: int | None,
) -> None:
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        tree = Path(tmp) / "iso"
        _esp_tree(esp_file, tree)
        images = tree / "images"
        images.mkdir()
        for src in (full.path, full.checksum, full.signature):
            if src is not None:
                try:
                    os.link(src, images / src.name)  # no copy when on one file system
                except OSError:
                    shutil.copy(src, images)
        label = "".join(c for c in base.upper() if c.isalnum() or c == "_")[:32] or "EIB"
        xorriso.make_iso(dest, tree=tree, volume_id=label, efi_image=esp_file, date=epoch)
