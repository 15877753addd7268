"""compat/eib.sh: the helpers legacy hooks call, run through real bash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "compat" / "eib.sh"


def sh(
    script: str, env: dict[str, str] | None = None, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], **(env or {})}
    return subprocess.run(
        ["bash", "-e", "-c", f'source "{LIBRARY}"\n{script}'],
        env=full,
        capture_output=True,
        text=True,
        check=check,
        cwd=cwd,
    )


def test_outfile() -> None:
    out = sh("eib_outfile img.gz", {"EIB_OUTDIR": "/out", "EIB_OUTVERSION": "eos-master.1.base"})
    assert out.stdout == "/out/eos-master.1.base.img.gz\n"
    missing = sh("eib_outfile img.gz", {"EIB_OUTDIR": "/out"}, check=False)
    assert missing.returncode != 0 and "EIB_OUTVERSION is not set" in missing.stderr


def test_retry_until_success_and_gives_up(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = f"""
    flaky() {{ echo x >> "{counter}"; [ $(wc -l < "{counter}") -ge 3 ]; }}
    retry flaky
    """
    result = sh(script, {"EIB_RETRY_INTERVAL": "0"})
    assert counter.read_text().count("x") == 3
    assert "attempt 2 of 3" in result.stderr
    failed = sh("retry false", {"EIB_RETRY_INTERVAL": "0", "EIB_RETRY_ATTEMPTS": "2"}, check=False)
    assert failed.returncode == 1
    assert "Command failed 2 times, giving up: false" in failed.stderr


def test_recreate_dir(tmp_path: Path) -> None:
    target = tmp_path / "d"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "f").write_text("x")
    sh(f'recreate_dir "{target}"')
    assert target.is_dir() and list(target.iterdir()) == []


def test_checksum_file_verifies_with_sha256sum(tmp_path: Path) -> None:
    image = tmp_path / "eos.img.gz"
    image.write_bytes(b"\x00image")
    sh(f'checksum_file "{image}"')
    text = (tmp_path / "eos.img.gz.sha256").read_text()
    assert text.endswith("  eos.img.gz\n")
    subprocess.run(
        ["sha256sum", "-c", "eos.img.gz.sha256"], cwd=tmp_path, check=True, capture_output=True
    )


def test_sign_file_with_and_without_key(tmp_path: Path) -> None:
    home = tmp_path / "sys" / "gnupg"
    home.mkdir(mode=0o700, parents=True)
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--passphrase",
            "",
            "--quick-gen-key",
            "eib test <test@example.org>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--with-colons", "--list-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    keyid = next(line.split(":")[4] for line in listing.splitlines() if line.startswith("pub"))
    target = tmp_path / "out.img"
    target.write_bytes(b"data")
    sh(f'sign_file "{target}"', {"EIB_SYSCONFDIR": str(tmp_path / "sys")})
    assert not (tmp_path / "out.img.asc").exists()  # no key configured: nothing to do
    sh(
        f'sign_file "{target}"',
        {"EIB_IMAGE_SIGNING_KEYID": keyid, "EIB_SYSCONFDIR": str(tmp_path / "sys")},
    )
    verify = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--verify", f"{target}.asc", str(target)],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    try:
        sh(
            f'sign_file "{target}" "{tmp_path}/sig.asc"',
            {
                "EIB_IMAGE_SIGNING_KEYID": keyid,
                "EIB_IMAGE_GPG_HOMEDIR": str(home),
                "EIB_SYSCONFDIR": str(tmp_path / "no-such-dir"),
            },
        )
        assert (tmp_path / "sig.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_mount_tracking_and_umount_all(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    outer.mkdir()
    env = {"EIB_TMPDIR": str(tmpdir)}
    try:
        sh(
            f'eib_mount -t tmpfs eibtest "{outer}"\nmkdir "{inner}"\n'
            f'eib_mount -t tmpfs eibtest "{inner}"',
            env,
        )
        assert (tmpdir / "mounts").read_text().split() == [str(outer), str(inner)]
        assert subprocess.run(["mountpoint", "-q", str(inner)]).returncode == 0
        # A later hook (a new shell) cleans up what an earlier one mounted.
        sh("eib_umount_all", env)
        assert subprocess.run(["mountpoint", "-q", str(outer)]).returncode != 0
        assert not (tmpdir / "mounts").exists()
        sh("eib_umount_all", env)  # nothing recorded: a no-op
    finally:
        for target in (inner, outer):
            subprocess.run(["umount", str(target)], capture_output=True, check=False)


def test_locale_helper() -> None:
    assert sh("locale_to_iso_639_1 br_FR.iso885915@euro").stdout == "br-FR\n"
