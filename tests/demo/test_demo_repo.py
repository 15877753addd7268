"""The demo OSTree repo: signed ref, the tree ostree deploy needs, and a pull
over HTTP that verifies the signature."""

from __future__ import annotations

import gzip
import subprocess
import urllib.request
from pathlib import Path

import pytest

from eib.demo import OSTREE_REF, READY_MARKER, DemoPaths, serve
from eib.demo.gpgkey import ensure_key, export_public_key, key_fingerprint, stop_agent


def ostree(*args: str | Path) -> str:
    proc = subprocess.run(["ostree", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cat(demo: DemoPaths, path: str) -> bytes:
    return subprocess.run(
        ["ostree", f"--repo={demo.ostree_repo}", "cat", OSTREE_REF, path],
        capture_output=True,
        check=True,
    ).stdout


def test_repo_is_archive_with_the_ref(demo: DemoPaths) -> None:
    repo = f"--repo={demo.ostree_repo}"
    assert demo.ostree_ref == OSTREE_REF == "os/eib-demo/amd64/master"
    assert ostree(repo, "config", "get", "core.mode").strip() == "archive-z2"
    assert OSTREE_REF in ostree(repo, "refs").split()
    assert ostree(repo, "rev-parse", OSTREE_REF).strip() == demo.commit


def test_commit_has_good_signature_from_demo_key(demo: DemoPaths, keyring: Path) -> None:
    out = ostree(f"--repo={demo.ostree_repo}", "show", f"--gpg-homedir={keyring}", OSTREE_REF)
    assert "Good signature" in out
    assert demo.key_id[-16:] in out
    assert "Date:  2024-01-01 00:00:00 +0000" in out


def test_tree_has_the_ostree_layout(demo: DemoPaths) -> None:
    listing = ostree(f"--repo={demo.ostree_repo}", "ls", "-R", OSTREE_REF)
    entries = {
        line.split()[-1] if "->" not in line else line.split()[-3]: line
        for line in listing.splitlines()
    }
    kver = demo.kernel_version
    for path in (
        f"/usr/lib/modules/{kver}/vmlinuz",
        f"/usr/lib/modules/{kver}/initramfs.img",
        "/usr/lib/grub/i386-pc/boot.img",
        "/usr/lib/grub/i386-pc/core.img",
        "/usr/lib/grub/x86_64-efi/grubx64.efi",
        "/usr/bin/busybox",
        "/usr/sbin/init",
        "/usr/lib/os-release",
    ):
        assert entries[path].startswith("-"), path
    assert entries["/usr/sbin/init"].startswith("-00755 0 0")
    for link, target in {
        "/bin": "usr/bin",
        "/sbin": "usr/sbin",
        "/lib": "usr/lib",
        "/ostree": "sysroot/ostree",
        "/home": "var/home",
        "/usr/etc/localtime": "../usr/share/zoneinfo/Etc/UTC",
    }.items():
        assert entries[link].startswith("l") and entries[link].endswith(f"-> {target}"), link
    for directory in ("/sysroot", "/var", "/boot", "/proc", "/sys", "/dev", "/run"):
        assert entries[directory].startswith("d00755 0 0"), directory
    assert entries["/tmp"].startswith("d01777")
    assert "/etc" not in entries  # /etc is made from /usr/etc at deploy time

    assert cat(demo, "/usr/etc/hostname") == b"eib-demo\n"
    os_release = cat(demo, "/usr/etc/os-release").decode()
    assert 'PRETTY_NAME="EIB Demo OS 1"' in os_release
    assert cat(demo, "/usr/lib/os-release").decode() == os_release
    assert cat(demo, "/usr/etc/passwd").startswith(b"root:x:0:0:")
    assert READY_MARKER.encode() in cat(demo, "/usr/sbin/init")


def test_bootloader_images(demo: DemoPaths) -> None:
    boot_img = cat(demo, "/usr/lib/grub/i386-pc/boot.img")
    assert len(boot_img) == 512 and boot_img[510:] == b"\x55\xaa"
    core_img = cat(demo, "/usr/lib/grub/i386-pc/core.img")
    assert 0 < len(core_img) < 1024 * 1024  # fits the 1 MiB BIOS boot partition
    # core.img = diskboot.img (which loads the rest) + the compressed kernel,
    # modules and early config.
    diskboot = Path("/usr/lib/grub/i386-pc/diskboot.img").read_bytes()
    assert core_img[:0x40] == diskboot[:0x40]
    efi = cat(demo, "/usr/lib/grub/x86_64-efi/grubx64.efi")
    assert efi[:2] == b"MZ"
    assert b"configfile ($root)/boot/grub/grub.cfg" in efi


def test_initramfs_holds_init_busybox_and_ordered_modules(demo: DemoPaths, tmp_path: Path) -> None:
    image = cat(demo, f"/usr/lib/modules/{demo.kernel_version}/initramfs.img")
    out = tmp_path / "initramfs"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], input=gzip.decompress(image), cwd=out, check=True)
    assert (out / "init").stat().st_mode & 0o111
    assert b"switch_root" in (out / "init").read_bytes()
    assert (out / "bin" / "busybox").stat().st_size > 100_000
    order = [Path(m).name for m in (out / "etc" / "modules.load").read_text().split()]
    for name in order:
        assert (out / "lib" / "modules").rglob(name), name
    assert order.index("virtio_ring.ko") < order.index("virtio.ko") < order.index("virtio_blk.ko")
    assert order.index("jbd2.ko") < order.index("ext4.ko")
    assert order.index("mbcache.ko") < order.index("ext4.ko")
    assert order.index("crc32c_generic.ko") < order.index("ext4.ko")
    assert {"ahci.ko", "ata_piix.ko", "sd_mod.ko", "virtio_pci.ko"} <= set(order)


def test_pull_over_http_verifies_signature_and_second_pull_fetches_nothing(
    demo: DemoPaths, tmp_path: Path
) -> None:
    client = tmp_path / "client"
    ostree("init", "--mode=archive-z2", f"--repo={client}")
    with serve(demo.root, 0) as url:
        ostree(
            f"--repo={client}",
            "remote",
            "add",
            f"--gpg-import={demo.gpg_key}",
            "--set=gpg-verify-summary=true",
            "demo",
            f"{url}/ostree",
        )
        ostree(f"--repo={client}", "pull", "demo", OSTREE_REF)
        first = url.fetched("/ostree/objects/")
        ostree(f"--repo={client}", "pull", "demo", OSTREE_REF)
        # ostree always re-reads the detached signature; nothing else may come.
        second = [
            p
            for p in url.fetched("/ostree/objects/")[len(first) :]
            if not p.endswith(".commitmeta")
        ]
        shown = ostree(f"--repo={client}", "show", "--gpg-verify-remote=demo", f"demo:{OSTREE_REF}")
        summary = ostree(f"--repo={client}", "remote", "summary", "demo")
    assert len(first) > 10
    assert second == []
    assert ostree(f"--repo={client}", "rev-parse", f"demo:{OSTREE_REF}").strip() == demo.commit
    assert "Good signature" in shown
    assert f"* {OSTREE_REF}" in summary and demo.commit in summary


def test_pull_with_another_key_is_refused(demo: DemoPaths, tmp_path: Path) -> None:
    other_home = tmp_path / "other-gnupg"
    other_home.mkdir(mode=0o700)
    params = ("%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
              "Name-Real: Someone Else\nExpire-Date: 0\n%commit\n")
    try:
        subprocess.run(["gpg", "--batch", "--homedir", str(other_home), "--gen-key"],
                       input=params, text=True, check=True, capture_output=True)
        other = key_fingerprint(other_home)
        assert other is not None and other != ensure_key(demo.gpg_homedir)
        export_public_key(other_home, other, tmp_path / "other.asc")
    finally:
        stop_agent(other_home)
    client = tmp_path / "client"
    ostree("init", "--mode=archive-z2", f"--repo={client}")
    with serve(demo.root, 0) as url:
        ostree(
            f"--repo={client}",
            "remote",
            "add",
            f"--gpg-import={tmp_path / 'other.asc'}",
            "demo",
            f"{url}/ostree",
        )
        proc = subprocess.run(
            ["ostree", f"--repo={client}", "pull", "demo", OSTREE_REF],
            capture_output=True,
            text=True,
        )
    assert proc.returncode != 0
    assert "GPG" in proc.stderr or "signature" in proc.stderr.lower()
    assert OSTREE_REF not in ostree(f"--repo={client}", "refs")


def test_key_and_flatpak_repo_are_served(demo: DemoPaths) -> None:
    with serve(demo.root, 0) as url:
        with urllib.request.urlopen(f"{url}/keys/eib-demo.asc") as resp:
            assert resp.read() == demo.gpg_key.read_bytes()
        if not demo.has_flatpak:
            pytest.fail("the demo has no Flatpak repo")
        with urllib.request.urlopen(f"{url}/flatpak/summary") as resp:
            assert resp.status == 200 and len(resp.read()) > 0
    assert (demo.flatpak_repo / "summary.sig").is_file()
