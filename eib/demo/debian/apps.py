"""The Debian OS's Flatpak repo: a runtime made of real Debian binaries from
the bootstrapped tree, and an app that prints the boot marker.

The runtime holds dash (as `/bin/sh`), a few coreutils that need nothing but
the C library, glibc's loader, `libc.so.6` and the real `ldconfig` that
`flatpak run` calls: enough for a small program, built from the same
packages as the OS.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from eib.demo.debian.layout import FLATPAK_MARKER
from eib.demo.flatpak_repo import DEMO_ARCH, Signer, _export, build_app, update_repo

RUNTIME = "org.eib.DebianPlatform"
RUNTIME_BRANCH = "12"
APPS = ("org.eib.DebianHello",)

_MULTIARCH = "lib/x86_64-linux-gnu"
# tree path (under usr/) → runtime path (under usr/)
_FILES = {
    "bin/dash": "bin/dash",
    "bin/echo": "bin/echo",
    "bin/cat": "bin/cat",
    "bin/uname": "bin/uname",
    "bin/true": "bin/true",
    "sbin/ldconfig": "bin/ldconfig",
    f"{_MULTIARCH}/libc.so.6": f"{_MULTIARCH}/libc.so.6",
    f"{_MULTIARCH}/ld-linux-x86-64.so.2": f"{_MULTIARCH}/ld-linux-x86-64.so.2",
}


def _runtime_dir(tree: Path, build: Path) -> None:
    usr = build / "usr"
    (build / "files").mkdir(parents=True)
    for src, dest in _FILES.items():
        target = usr / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile((tree / "usr" / src).resolve(), target)
        target.chmod(0o755 if dest.startswith("bin/") or ".so" in dest else 0o644)
    (usr / "bin" / "sh").symlink_to("dash")
    (usr / "lib64").mkdir()
    (usr / "lib64" / "ld-linux-x86-64.so.2").symlink_to(f"../{_MULTIARCH}/ld-linux-x86-64.so.2")
    (usr / "etc").mkdir()
    (usr / "etc" / "ld.so.conf").write_text(f"/usr/{_MULTIARCH}\n")
    (usr / "etc" / "os-release").write_text(f"NAME={RUNTIME}\nID=eib-debian-platform\n")
    (build / "metadata").write_text(
        f"[Runtime]\nname={RUNTIME}\nruntime={RUNTIME}/{DEMO_ARCH}/{RUNTIME_BRANCH}\n"
        f"sdk={RUNTIME}/{DEMO_ARCH}/{RUNTIME_BRANCH}\n"
    )


def build_debian_flatpak_repo(tree: Path, dest: Path, gpg_homedir: Path, key_id: str) -> None:
    """Fill `dest` with the signed repo: the runtime and the apps in APPS."""
    signer = Signer(gpg_homedir, key_id)
    work = dest.parent / f".{dest.name}-build"
    shutil.rmtree(work, ignore_errors=True)
    try:
        build = work / "runtime"
        _runtime_dir(tree, build)
        _export(dest, build, RUNTIME_BRANCH, DEMO_ARCH, signer, runtime=True,
                subject=f"{RUNTIME} {RUNTIME_BRANCH}")
        for app_id in APPS:
            build_app(
                dest,
                work,
                app_id,
                runtime=f"{RUNTIME}//{RUNTIME_BRANCH}",
                signer=signer,
                script=f'echo "{FLATPAK_MARKER} {app_id} (kernel $(uname -r))"\n',
            )
        update_repo(dest, signer, title="eib Debian apps", default_branch="stable")
    finally:
        shutil.rmtree(work, ignore_errors=True)
