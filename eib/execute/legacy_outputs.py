"""Output files the legacy builder published beside the images.

Download pages, installers and release scripts read them by name:
`<outversion>.ostree.txt` (which OS commit the image holds),
`<outversion>.config.ini` (the public configuration the build used), the
`.size` file of each image (its extracted size), and the
`user.eos-image-version` attribute naming the image a file came from.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

from eib.model.plan import Plan
from eib.tools import ostree

log = logging.getLogger("eib.execute.legacy_outputs")

VERSION_XATTR = "user.eos-image-version"


def ostree_txt_name(plan: Plan) -> str:
    return f"{plan.outputs.outversion}.ostree.txt"


def config_ini_name(plan: Plan) -> str:
    return f"{plan.outputs.outversion}.config.ini"


def ostree_txt(repo: Path, branch: str, commit: str) -> str:
    """`Branch <ref>` and `ostree show` of the deployed commit, as the legacy file had."""
    shown = ostree.ostree(["show", f"--repo={repo}", commit]).stdout
    return f"Branch {branch}\n{shown}"


def write_ostree_txt(plan: Plan, sysroot: Path, commit: str, output: Path) -> Path:
    dest = output / ostree_txt_name(plan)
    _write_atomic(dest, ostree_txt(sysroot / "ostree" / "repo", plan.ostree.ref, commit))
    return dest


def empty_output_dir(output: Path, keep: str) -> None:
    """Remove what content hooks left in the output dir, but the build log `keep`.

    The legacy builder recreated it before the image hooks: only what image
    hooks and later steps write is published.
    """
    from eib.execute.mounts import remove_tree

    for entry in output.iterdir():
        if entry.name == keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            remove_tree(entry)
        else:
            entry.unlink()
        log.info("output dir: removed %s, written before the image hooks", entry.name)


def write_size(path: Path, size: int) -> Path:
    """`<path>.size`: a byte count and a newline."""
    dest = path.with_name(path.name + ".size")
    _write_atomic(dest, f"{size}\n")
    return dest


def tag_version(path: Path, outversion: str) -> None:
    """Mark an output file with the image version, where the file system allows it.

    The attribute travels with local copies (`cp -a`, rsync -X); an output
    dir on a file system without user attributes only loses that.
    """
    try:
        os.setxattr(path, VERSION_XATTR, outversion.encode())
    except OSError as err:
        if err.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise
        log.info("%s: the file system keeps no %s attribute", path.name, VERSION_XATTR)


def config_ini(plan: Plan) -> str:
    """The public config as hooks read it in `EIB_TMPCONFIG` (the legacy builder
    published a copy of that file), the cache dir left as its token."""
    from eib.execute.hookfiles import render_config

    return render_config(plan, f"# Configuration for {plan.outputs.outversion}")


def write_config_ini(plan: Plan, output: Path, scrub: Any = None) -> Path:
    """Write `<outversion>.config.ini`; `scrub` removes any secret value that slipped in."""
    text = config_ini(plan)
    dest = output / config_ini_name(plan)
    _write_atomic(dest, scrub(text) if scrub else text)
    return dest


def _write_atomic(dest: Path, text: str) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(dest)
