"""`ensure_demo`: build the demo repos once, reuse them while inputs hold.

Layout of `<cache_dir>/demo/`:

* `gnupg/`: the throwaway key's GNUPGHOME, made once and kept across
  rebuilds so clients that imported the key keep verifying;
* `debs/`: the downloaded kernel `.deb` (unless `deb_dir` says otherwise);
* `serve/`: the directory to serve: `ostree/` (archive repo), `flatpak/`
  (Flatpak repo), `keys/eib-demo.asc` (public key);
* `inputs.json`: what the current `serve/` was built from.

Reuse is decided from cheap local facts only (no apt query): the kernel
package recorded at build time, digests of busybox, of the GRUB images'
sources and of the demo builder's own code, and the key.  A rebuild happens
in `serve.new/` and replaces `serve/` only once complete, under a lock, so a
concurrent or interrupted build never leaves a half-made repo being served.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eib.demo.gpgkey import ensure_key, export_public_key, stop_agent
from eib.demo.grub import GRUB_LIB
from eib.demo.initramfs import BUSYBOX
from eib.demo.kernel import current_kernel_package
from eib.demo.os import build_demo_os
from eib.demo.repo import OSTREE_REF

log = logging.getLogger("eib.demo")

# build_demo_flatpak_repo(dest, gpg_homedir, key_id): fills `dest` with a
# signed Flatpak repo.
FlatpakBuilder = Callable[[Path, Path, str], None]

KEY_FILE_NAME = "eib-demo.asc"
_FORMAT = 1
_SOURCE_DIR = Path(__file__).resolve().parent
# Tools the demo builders call into, beside their own code.
_TOOL_SOURCES = (
    _SOURCE_DIR.parent / "tools" / "run.py",
    _SOURCE_DIR.parent / "tools" / "flatpak.py",
)
_HOST_INPUTS = (
    BUSYBOX,
    GRUB_LIB / "i386-pc" / "boot.img",
    GRUB_LIB / "i386-pc" / "kernel.img",
    GRUB_LIB / "x86_64-efi" / "kernel.img",
)


@dataclass(frozen=True)
class DemoPaths:
    """A built demo: serve `root`; the rest is for builds and tests."""

    root: Path
    ostree_repo: Path
    flatpak_repo: Path
    gpg_key: Path
    ostree_ref: str
    gpg_homedir: Path
    key_id: str
    commit: str
    kernel_version: str
    has_flatpak: bool


def _digest(paths: list[Path]) -> str:
    """Names and contents; eib's own files by their path inside the package, so
    checkouts at different places share one demo instead of rebuilding it in turn."""
    h = hashlib.sha256()
    package = _SOURCE_DIR.parent
    for path in paths:
        name = path.relative_to(package) if path.is_relative_to(package) else path
        h.update(str(name).encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def _default_flatpak_builder() -> FlatpakBuilder | None:
    """`eib.demo.flatpak_repo.build_demo_flatpak_repo` when that module exists."""
    if importlib.util.find_spec("eib.demo.flatpak_repo") is None:
        return None
    from eib.demo import flatpak_repo

    builder: FlatpakBuilder = flatpak_repo.build_demo_flatpak_repo
    return builder


def _inputs(kernel_package: str, key_id: str, flatpak: bool) -> dict[str, object]:
    return {
        "format": _FORMAT,
        "kernel_package": kernel_package,
        "key_id": key_id,
        "flatpak": flatpak,
        "host": _digest(list(_HOST_INPUTS)),
        "builder": _digest([*sorted(_SOURCE_DIR.glob("*.py")), *_TOOL_SOURCES]),
    }


@contextmanager
def _locked(demo: Path) -> Iterator[None]:
    demo.mkdir(parents=True, exist_ok=True)
    with open(demo / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _paths(demo: Path, stamp: dict[str, object]) -> DemoPaths:
    root = demo / "serve"
    return DemoPaths(
        root=root,
        ostree_repo=root / "ostree",
        flatpak_repo=root / "flatpak",
        gpg_key=root / "keys" / KEY_FILE_NAME,
        ostree_ref=OSTREE_REF,
        gpg_homedir=demo / "gnupg",
        key_id=str(stamp["key_id"]),
        commit=str(stamp["commit"]),
        kernel_version=str(stamp["kernel_version"]),
        has_flatpak=bool(stamp["flatpak"]),
    )


def _read_stamp(demo: Path) -> dict[str, object] | None:
    try:
        data = json.loads((demo / "inputs.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _up_to_date(demo: Path, stamp: dict[str, object], builder: FlatpakBuilder | None) -> bool:
    if not (demo / "serve" / "ostree" / "config").is_file() or "commit" not in stamp:
        return False
    if (
        not (demo / "gnupg" / "pubring.kbx").is_file()
        or not (demo / "serve" / "keys" / KEY_FILE_NAME).is_file()
    ):
        log.info("demo key missing: rebuilding")
        return False
    expected = _inputs(str(stamp.get("kernel_package")), str(stamp.get("key_id")), bool(builder))
    changed = [k for k, v in expected.items() if stamp.get(k) != v]
    if changed:
        log.info("demo OS inputs changed (%s): rebuilding", ", ".join(changed))
    return not changed


def ensure_demo(
    cache_dir: Path,
    *,
    deb_dir: Path | None = None,
    kernel_package: str | None = None,
    flatpak_builder: FlatpakBuilder | bool = True,
) -> DemoPaths:
    """The demo OS (and Flatpak) repos under `<cache_dir>/demo/`, built when
    missing or stale, otherwise reused in well under a second.

    `deb_dir` holds downloaded kernel packages (default `<demo>/debs`);
    `kernel_package` pins e.g. `linux-image-6.1.0-56-amd64` (default: the one
    the apt lists name when building).  `flatpak_builder`: True uses
    `eib.demo.flatpak_repo.build_demo_flatpak_repo` when that module exists,
    False builds no Flatpak repo, a callable `(dest, gpg_homedir, key_id)` is
    used instead.
    """
    return ensure_demo_dir(
        cache_dir / "demo",
        deb_dir=deb_dir,
        kernel_package=kernel_package,
        flatpak_builder=flatpak_builder,
    )


def ensure_demo_dir(
    demo: Path,
    *,
    deb_dir: Path | None = None,
    kernel_package: str | None = None,
    flatpak_builder: FlatpakBuilder | bool = True,
) -> DemoPaths:
    """`ensure_demo` for an explicit demo directory (`eib demo-os --dir`)."""
    builder: FlatpakBuilder | None
    if flatpak_builder is True:
        builder = _default_flatpak_builder()
    elif flatpak_builder is False:
        builder = None
    else:
        builder = flatpak_builder
    with _locked(demo):
        stamp = _read_stamp(demo)
        if (
            stamp is not None
            and (kernel_package is None or stamp.get("kernel_package") == kernel_package)
            and _up_to_date(demo, stamp, builder)
        ):
            return _paths(demo, stamp)
        stamp = _build(demo, deb_dir or demo / "debs", kernel_package, builder, demo / "gnupg")
        return _paths(demo, stamp)


def _build(
    demo: Path,
    deb_dir: Path,
    kernel_package: str | None,
    builder: FlatpakBuilder | None,
    gpg_homedir: Path,
) -> dict[str, object]:
    package = kernel_package or current_kernel_package()
    key_id = ensure_key(gpg_homedir)
    staging = demo / "serve.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    export_public_key(gpg_homedir, key_id, staging / "keys" / KEY_FILE_NAME)
    built = build_demo_os(
        staging / "ostree",
        kernel_package=package,
        deb_dir=deb_dir,
        gpg_homedir=gpg_homedir,
        key_id=key_id,
        scratch=demo / "scratch",
    )
    if builder is not None:
        log.info("building the demo Flatpak repo")
        try:
            builder(staging / "flatpak", gpg_homedir, key_id)
        finally:
            stop_agent(gpg_homedir)
    stamp: dict[str, object] = {
        **_inputs(package, key_id, builder is not None),
        "commit": built.commit,
        "kernel_version": built.kernel_version,
        "kernel_deb": built.kernel_deb.name,
    }
    final = demo / "serve"
    (demo / "inputs.json").unlink(missing_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    (demo / "inputs.json").write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return stamp
