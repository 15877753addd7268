"""Tiny, real Flatpak repos: the demo OS's apps, and the test fixtures.

Everything is made with `flatpak build-finish` / `build-export` /
`build-update-repo`, so the result is a genuine signed archive repo that
`flatpak install` accepts. A runtime is a busybox in `usr/`; apps are shell
scripts. Commit timestamps are fixed and file contents seeded, so the same call
gives the same commits, and a build takes a second or two.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eib.tools.flatpak import build_export, build_finish, build_update_repo

BUSYBOX = Path("/bin/busybox")
TIMESTAMP = "2024-01-01T00:00:00Z"
DEMO_ARCH = "x86_64"
DEMO_LOCALES = ("en", "es", "fr", "pt")
DEMO_RUNTIME = "org.eib.Platform"
DEMO_RUNTIME_BRANCH = "1"
DEMO_APPS = ("org.eib.Hello", "org.eib.Clock")
# `flatpak run` calls `ldconfig -X -C CACHE` and bind-mounts CACHE: a static
# busybox needs no real cache, only the file.
LDCONFIG = """#!/bin/sh
while [ $# -gt 0 ]; do
  if [ "$1" = -C ]; then : > "$2"; shift; fi
  shift
done
"""
BUSYBOX_APPLETS = ("sh", "echo", "cat", "date", "ls", "sleep", "true", "uname")


@dataclass(frozen=True)
class Signer:
    """A GPG key that signs commits and summaries, and the repo's collection id if any
    (so every commit of a P2P-ready repo carries its collection binding)."""

    homedir: Path
    key_id: str
    collection_id: str = ""


@dataclass(frozen=True)
class ExtraData:
    """A file an app downloads from outside the repo at install time."""

    name: str
    uri: str
    data: bytes
    installed_size: int = 0

    def finish_arg(self) -> str:
        digest = hashlib.sha256(self.data).hexdigest()
        size = len(self.data)
        return f"--extra-data={self.name}:{digest}:{size}:{self.installed_size or size}:{self.uri}"


def filler(seed: str, size: int) -> bytes:
    """`size` incompressible bytes, the same for the same seed (so sizes are predictable)."""
    return random.Random(seed).randbytes(size)


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    path.chmod(mode)


def build_runtime(
    repo: Path,
    work: Path,
    *,
    name: str = DEMO_RUNTIME,
    branch: str = DEMO_RUNTIME_BRANCH,
    arch: str = DEMO_ARCH,
    signer: Signer | None = None,
    locale_extension: bool = True,
    size: int = 0,
) -> str:
    """A runtime made of a static busybox; returns its ref.

    `flatpak run` needs an `ldconfig` in the runtime, and `build-export
    --runtime` wants a (here empty) `files/` next to `usr/`.
    """
    build = _fresh(work / f"runtime-{name}-{branch}")
    usr = build / "usr"
    (build / "files").mkdir()
    (usr / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BUSYBOX, usr / "bin" / "busybox")
    (usr / "bin" / "busybox").chmod(0o755)
    for applet in BUSYBOX_APPLETS:
        (usr / "bin" / applet).symlink_to("busybox")
    _write(usr / "bin" / "ldconfig", LDCONFIG, 0o755)
    (usr / "share" / "runtime" / "locale").mkdir(parents=True)
    _write(usr / "etc" / "os-release", f"NAME={name}\nID=eib-platform\nVERSION_ID={branch}\n")
    if size:
        _write(usr / "share" / name / "payload.bin", filler(name, size))
    metadata = (
        f"[Runtime]\nname={name}\nruntime={name}/{arch}/{branch}\nsdk={name}/{arch}/{branch}\n"
    )
    if locale_extension:
        metadata += (
            f"\n[Extension {name}.Locale]\ndirectory=share/runtime/locale\n"
            "autodelete=true\nlocale-subset=true\n"
        )
    _write(build / "metadata", metadata)
    _export(repo, build, branch, arch, signer, runtime=True, subject=f"{name} {branch}")
    return f"runtime/{name}/{arch}/{branch}"


def build_locale_extension(
    repo: Path,
    work: Path,
    locales: Sequence[str],
    *,
    runtime: str = DEMO_RUNTIME,
    branch: str = DEMO_RUNTIME_BRANCH,
    arch: str = DEMO_ARCH,
    signer: Signer | None = None,
    size_per_locale: int = 0,
) -> str:
    """`<runtime>.Locale`, one subdirectory per locale so `xa.languages` picks what is installed."""
    name = f"{runtime}.Locale"
    build = _fresh(work / f"locale-{name}-{branch}")
    for locale in locales:
        base = build / "files" / locale / "share" / "locale" / locale / "LC_MESSAGES"
        _write(base / "eib.txt", f"greeting[{locale}]\n")
        if size_per_locale:
            _write(base / "eib.bin", filler(f"{name}/{locale}", size_per_locale))
    _write(
        build / "metadata",
        f"[Runtime]\nname={name}\n\n[ExtensionOf]\nref=runtime/{runtime}/{arch}/{branch}\n",
    )
    _export(repo, build, branch, arch, signer, runtime=True, files="files", subject=name)
    return f"runtime/{name}/{arch}/{branch}"


def build_app(
    repo: Path,
    work: Path,
    app_id: str,
    *,
    runtime: str = f"{DEMO_RUNTIME}//{DEMO_RUNTIME_BRANCH}",
    branch: str = "stable",
    arch: str = DEMO_ARCH,
    signer: Signer | None = None,
    script: str = "",
    size: int = 0,
    extra_data: ExtraData | None = None,
    appstream: bool = True,
) -> str:
    """An app running a busybox shell script; `size` adds that many incompressible bytes."""
    runtime_name, _, runtime_branch = runtime.partition("//")
    runtime_ref = f"{runtime_name}/{arch}/{runtime_branch or DEMO_RUNTIME_BRANCH}"
    build = _fresh(work / f"app-{app_id}-{branch}")
    files = build / "files"
    command = app_id.rsplit(".", 1)[-1].lower()
    body = script or f'echo "{app_id}: hello from $(uname -s)"\n'
    _write(files / "bin" / command, f"#!/bin/sh\n{body}", 0o755)
    if size:
        _write(files / "share" / app_id / "payload.bin", filler(app_id, size))
    title = app_id.rsplit(".", 1)[-1]
    _write(
        files / "share" / "applications" / f"{app_id}.desktop",
        f"[Desktop Entry]\nType=Application\nName={title}\nExec={command}\nIcon={app_id}\n",
    )
    if appstream:
        _write(files / "share" / "app-info" / "xmls" / f"{app_id}.xml.gz", _appstream(app_id))
    _write(
        build / "metadata",
        f"[Application]\nname={app_id}\nruntime={runtime_ref}\nsdk={runtime_ref}\n",
    )
    extra = [extra_data.finish_arg()] if extra_data else []
    build_finish(build, command=command, extra_args=["--share=ipc", *extra])
    _export(repo, build, branch, arch, signer, subject=app_id)
    return f"app/{app_id}/{arch}/{branch}"


def _appstream(app_id: str) -> bytes:
    title = app_id.rsplit(".", 1)[-1]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<components version="0.8" origin="flatpak">\n'
        '  <component type="desktop-application">\n'
        f"    <id>{app_id}</id>\n    <name>{title}</name>\n"
        f"    <summary>The {title} demo app</summary>\n"
        '    <project_license>GPL-2.0-or-later</project_license>\n'
        "  </component>\n</components>\n"
    )
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(xml.encode())
    return out.getvalue()


def _export(
    repo: Path,
    build: Path,
    branch: str,
    arch: str,
    signer: Signer | None,
    *,
    runtime: bool = False,
    files: str | None = None,
    subject: str | None = None,
) -> None:
    build_export(
        repo,
        build,
        branch,
        runtime=runtime,
        files=files,
        arch=arch,
        gpg_key=signer.key_id if signer else None,
        gpg_homedir=signer.homedir if signer else None,
        timestamp=TIMESTAMP,
        subject=subject,
        collection_id=(signer.collection_id or None) if signer else None,
    )


def update_repo(
    repo: Path, signer: Signer | None, *, title: str = "", default_branch: str = ""
) -> None:
    """Write the (signed) summary with every ref's sizes and metadata, and the appstream branch."""
    build_update_repo(
        repo,
        title=title or None,
        default_branch=default_branch or None,
        gpg_key=signer.key_id if signer else None,
        gpg_homedir=signer.homedir if signer else None,
        collection_id=(signer.collection_id or None) if signer else None,
    )


def build_demo_flatpak_repo(dest: Path, gpg_homedir: Path, key_id: str) -> None:
    """The demo's signed repo: `org.eib.Platform//1` with its locales, and two apps.

    `dest` becomes the archive repo (served as `<demo root>/flatpak/`); build
    directories go to a sibling scratch dir that is removed afterwards.
    """
    signer = Signer(gpg_homedir, key_id)
    if dest.exists():
        shutil.rmtree(dest)
    work = dest.parent / f".{dest.name}-build"
    try:
        build_runtime(dest, work, signer=signer)
        build_locale_extension(dest, work, DEMO_LOCALES, signer=signer)
        build_app(
            dest,
            work,
            "org.eib.Hello",
            signer=signer,
            script='echo "Hello from the eib demo OS"\n',
        )
        build_app(
            dest,
            work,
            "org.eib.Clock",
            signer=signer,
            script='date -u "+%Y-%m-%d %H:%M:%S UTC"\n',
        )
        update_repo(dest, signer, title="eib demo apps", default_branch="stable")
    finally:
        shutil.rmtree(work, ignore_errors=True)
