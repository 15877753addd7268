"""Building the demo OS: kernel from the Debian archive, tree, signed commit.

Everything between the `.deb` and the commit happens in a scratch directory
that is removed afterwards; only the OSTree repo is kept.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from eib.demo.kernel import fetch_kernel_deb, kernel_version, unpack_kernel
from eib.demo.repo import commit_tree
from eib.demo.tree import OS_VERSION, PRETTY_NAME, build_tree

log = logging.getLogger("eib.demo.os")


@dataclass(frozen=True)
class BuiltOS:
    """What `build_demo_os` made."""

    commit: str
    kernel_version: str
    kernel_deb: Path


def build_demo_os(
    repo: Path,
    *,
    kernel_package: str,
    deb_dir: Path,
    gpg_homedir: Path,
    key_id: str,
    scratch: Path,
) -> BuiltOS:
    """Build the demo OS with `kernel_package` and commit it, signed, to `repo`."""
    deb = fetch_kernel_deb(kernel_package, deb_dir)
    version = kernel_version(kernel_package)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        log.info("unpacking %s", deb.name)
        kernel = unpack_kernel(deb, version, scratch / "kernel")
        tree = scratch / "tree"
        build_tree(kernel, tree, scratch / "work")
        log.info("committing the demo OS (kernel %s)", version)
        checksum = commit_tree(
            tree,
            repo,
            gpg_homedir=gpg_homedir,
            key_id=key_id,
            version=OS_VERSION,
            subject=f"{PRETTY_NAME} {OS_VERSION} (Linux {version})",
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return BuiltOS(commit=checksum, kernel_version=version, kernel_deb=deb)
