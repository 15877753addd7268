"""`ensure_debian`: build the Debian OS once, reuse it while its inputs hold.

Layout of `<cache_dir>/demo/debian/` (beside the busybox demo, signed with
the same demo key from `<cache_dir>/demo/gnupg`):

* `debs/`: downloaded packages, kept so rebuilds fetch nothing known;
* `serve/`: what is served: `ostree/` (archive repo), `flatpak/` (the
  Debian runtime and apps), `keys/eib-demo.asc`;
* `inputs.json`: what `serve/` was built from, and the package list.

Reuse is decided from local facts only: the builder's code and the key.  A
newer Debian point release is picked up by removing the directory (or
changing the builder).  Builds happen in `serve.new/` and replace `serve/`
whole, under the demo directory's lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from eib.demo.cache import KEY_FILE_NAME, _locked
from eib.demo.debian.apps import build_debian_flatpak_repo
from eib.demo.debian.bootstrap import bootstrap
from eib.demo.debian.layout import OS_VERSION, PRETTY_NAME, convert
from eib.demo.debian.mirror import host_sources
from eib.demo.gpgkey import KEY_FINGERPRINT, ensure_key, export_public_key, stop_agent
from eib.demo.repo import COMMIT_TIMESTAMP, commit_tree

log = logging.getLogger("eib.demo.debian")

OSTREE_REF = "os/eib-debian/amd64/bookworm"
_FORMAT = 1
_SOURCES = sorted(Path(__file__).resolve().parent.glob("*.py")) + [
    Path(__file__).resolve().parent.parent / name
    for name in ("repo.py", "grub.py", "flatpak_repo.py")
]


@dataclass(frozen=True)
class DebianPaths:
    """A built Debian OS: serve `root`."""

    root: Path
    ostree_repo: Path
    flatpak_repo: Path
    gpg_key: Path
    ostree_ref: str
    gpg_homedir: Path
    key_id: str
    commit: str
    kernel_version: str
    packages: int
    build_seconds: float
    has_flatpak: bool = True


def _builder_digest() -> str:
    h = hashlib.sha256()
    for path in _SOURCES:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _paths(directory: Path, stamp: dict[str, object], gpg_homedir: Path) -> DebianPaths:
    root = directory / "serve"
    return DebianPaths(
        root=root,
        ostree_repo=root / "ostree",
        flatpak_repo=root / "flatpak",
        gpg_key=root / "keys" / KEY_FILE_NAME,
        ostree_ref=OSTREE_REF,
        gpg_homedir=gpg_homedir,
        key_id=str(stamp["key_id"]),
        commit=str(stamp["commit"]),
        kernel_version=str(stamp["kernel_version"]),
        packages=len(stamp.get("packages") or []),  # type: ignore[arg-type]
        build_seconds=float(stamp.get("build_seconds", 0.0)),  # type: ignore[arg-type]
    )


def _read_stamp(directory: Path) -> dict[str, object] | None:
    try:
        data = json.loads((directory / "inputs.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _fresh(directory: Path, stamp: dict[str, object] | None, key_id: str | None) -> bool:
    if stamp is None or not (directory / "serve" / "ostree" / "config").is_file():
        return False
    if not (directory / "serve" / "keys" / KEY_FILE_NAME).is_file():
        return False
    wanted = {"format": _FORMAT, "builder": _builder_digest(), "key_id": key_id}
    changed = [k for k, v in wanted.items() if stamp.get(k) != v]
    if changed:
        log.info("Debian OS inputs changed (%s): rebuilding", ", ".join(changed))
    return not changed


def ensure_debian(cache_dir: Path, *, rebuild: bool = False) -> DebianPaths:
    """The Debian OS repos under `<cache_dir>/demo/debian/`, built when missing
    or stale (or when `rebuild`), otherwise reused in well under a second."""
    return ensure_debian_dir(cache_dir / "demo", rebuild=rebuild)


def ensure_debian_dir(demo: Path, *, rebuild: bool = False) -> DebianPaths:
    """`ensure_debian` for an explicit demo directory (`eib demo-os --dir`)."""
    directory = demo / "debian"
    gpg_homedir = demo / "gnupg"
    with _locked(directory):
        stamp = _read_stamp(directory)
        if not rebuild and _fresh(directory, stamp, KEY_FINGERPRINT):
            assert stamp is not None
            return _paths(directory, stamp, gpg_homedir)
        stamp = _build(directory, gpg_homedir)
        return _paths(directory, stamp, gpg_homedir)


def _package_list(tree: Path) -> list[str]:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W",
         "-f=${Package}=${Version}\n"],
        capture_output=True, text=True, check=True,
    ).stdout
    return sorted(out.split())


def _build(directory: Path, gpg_homedir: Path) -> dict[str, object]:
    started = time.monotonic()
    sources = host_sources()
    key_id = ensure_key(gpg_homedir)
    scratch = directory / "scratch"
    staging = directory / "serve.new"
    for path in (scratch, staging):
        shutil.rmtree(path, ignore_errors=True)
    scratch.mkdir(parents=True)
    staging.mkdir(parents=True)
    tree = scratch / "tree"
    try:
        bootstrap(tree, sources, directory / "debs", COMMIT_TIMESTAMP)
        packages = _package_list(tree)
        log.info("building the Debian OS's Flatpak repo")
        build_debian_flatpak_repo(tree, staging / "flatpak", gpg_homedir, key_id)
        kver = convert(tree, scratch / "work")
        # The OS trusts its publisher, as an OSTree OS does: a remote added without a
        # key of its own (the legacy builder's Flatpak remotes) is verified with it.
        export_public_key(gpg_homedir, key_id, tree / "usr" / "share" / "ostree" /
                          "trusted.gpg.d" / Path(KEY_FILE_NAME).with_suffix(".gpg").name,
                          armor=False)
        export_public_key(gpg_homedir, key_id, staging / "keys" / KEY_FILE_NAME)
        log.info("committing the Debian OS (kernel %s)", kver)
        commit = commit_tree(
            tree,
            staging / "ostree",
            gpg_homedir=gpg_homedir,
            key_id=key_id,
            version=OS_VERSION,
            subject=f"{PRETTY_NAME} {OS_VERSION} (Linux {kver})",
            ref=OSTREE_REF,
        )
    finally:
        stop_agent(gpg_homedir)
        shutil.rmtree(scratch, ignore_errors=True)
    stamp: dict[str, object] = {
        "format": _FORMAT,
        "builder": _builder_digest(),
        "key_id": key_id,
        "commit": commit,
        "kernel_version": kver,
        "packages": packages,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    final = directory / "serve"
    (directory / "inputs.json").unlink(missing_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    (directory / "inputs.json").write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return stamp
