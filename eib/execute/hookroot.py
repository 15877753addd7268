"""The deployment as the image hooks see it: one set of mounts for the whole group.

The legacy builder mounted the deployment once before its image hooks and
undid it after the last: one tmpfs `/tmp` shared by every hook of the
group (so `60-dconf-prepare` can leave files for `61-dconf-compile.chroot`)
and never shipped, the cache and source dirs at `/tmp/eos-image-builder`
and `…/src`, and the host's `resolv.conf`.  eib's work, tmp, manifest and
output dirs are not below its cache dir, so they get their own mount points
on the tmpfs; the chroot environment names them (`ChrootPaths`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from eib.execute.chroot import chroot_mounts
from eib.execute.context import BuildContext
from eib.execute.hookenv import CACHEDIR_CHROOT, COMPAT_PYTHON, SRCDIR_CHROOT, srcdir_of
from eib.execute.inroot import resolve_in_root
from eib.execute.mounts import MountStack

log = logging.getLogger("eib.execute.hookroot")

BUILD_CHROOT = "/tmp/eib-build"
RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True)
class ChrootPaths:
    """Where the host dirs hooks name appear inside the deployment (variable → path)."""

    roots: dict[str, str] = field(default_factory=dict)
    python: str = ""


@contextmanager
def image_group_root(ctx: BuildContext) -> Iterator[ChrootPaths]:
    """Mount the deployment for the image group; undo everything, whatever happens."""
    deployment = ctx.deployment
    assert deployment is not None
    d = ctx.dirs
    for path in (d.tmp, d.manifest, d.output, d.content):
        path.mkdir(parents=True, exist_ok=True)
    with chroot_mounts(deployment, d.sysroot, ctx.os_var) as tmp, MountStack() as stack:
        cache = tmp / CACHEDIR_CHROOT.removeprefix("/tmp/")
        cache.mkdir()
        stack.bind(d.cache, cache)
        srcdir = srcdir_of(ctx.plan)
        roots = {"EIB_CACHEDIR": CACHEDIR_CHROOT}
        if srcdir.is_dir():
            (cache / "src").mkdir(exist_ok=True)
            stack.bind(srcdir, cache / "src")
            roots["EIB_SRCDIR"] = SRCDIR_CHROOT
        inside = {"EIB_TMPDIR": d.tmp, "EIB_MANIFESTDIR": d.manifest, "EIB_OUTDIR": d.output}
        for name, host in inside.items():
            target = tmp / "eib-build" / name.removeprefix("EIB_").removesuffix("DIR").lower()
            target.mkdir(parents=True)
            stack.bind(host, target)
            roots[name] = f"/{target.relative_to(deployment)}"
        python = ""
        if COMPAT_PYTHON.is_dir():
            (tmp / "eib-build" / "python").mkdir()
            stack.bind(COMPAT_PYTHON, tmp / "eib-build" / "python")
            python = f"{BUILD_CHROOT}/python"
        with host_resolv_conf(deployment):
            yield ChrootPaths(roots, python)


@contextmanager
def host_resolv_conf(deployment: Path) -> Iterator[None]:
    """The host's resolv.conf in the deployment while hooks run; the OS's own one after.

    Written through `resolve_in_root`, so a link in the OS's /etc never leads
    onto a host file; whatever the OS had there is put back.
    """
    target = resolve_in_root(deployment, "/etc/resolv.conf")
    link = deployment / "etc" / "resolv.conf"
    saved = link.parent / ".resolv.conf.eib-saved"
    had = link.exists() or link.is_symlink()
    if not RESOLV_CONF.is_file() or not link.parent.is_dir():
        yield
        return
    if had:
        link.rename(saved)
        target = link
    try:
        shutil.copyfile(RESOLV_CONF, target)
        yield
    finally:
        target.unlink(missing_ok=True)
        if had:
            saved.rename(link)
