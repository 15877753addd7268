"""Deploying the pulled commit into a fresh sysroot under the work dir.

The sysroot is what becomes the image's root partition: `ostree admin
init-fs`, `os-init`, the commit pulled locally from the cache repo, the remote
the installed OS updates from, and one deployment with the plan's kernel
arguments.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from eib.errors import BuildError
from eib.execute.context import BuildContext
from eib.execute.ostree_stage import key_files
from eib.tools import ostree

log = logging.getLogger("eib.execute.deploy")

# The bootloader ostree configures in the sysroot: on amd64 the disk stage
# installs GRUB itself, reading the BLS entries ("none" still writes them);
# arm64 boards boot with U-Boot's uEnv.txt layout.
BOOTLOADERS = {"amd64": "none", "i386": "none", "arm64": "uboot"}


def resolve_commit(ctx: BuildContext) -> str:
    """The commit to deploy: this build's pull, else what the cache repo holds."""
    if ctx.commit:
        return ctx.commit
    o = ctx.plan.ostree
    if o.commit:
        return o.commit
    cache = ctx.dirs.ostree_repo
    if not (cache / "config").is_file():
        raise BuildError(f"no OSTree cache repo at {cache}; run the ostree stage first")
    return ostree.rev_parse(cache, f"{o.remote}:{ctx.deploy_ref}")


def seed_uboot_env(sysroot: Path) -> None:
    """Give ostree's U-Boot backend the `boot/loader/uEnv.txt` it merges into.

    The backend rewrites the current uEnv.txt and fails when there is none, as
    in a fresh sysroot; ostree's own layout is `boot/loader → loader.0`.
    """
    boot = sysroot / "boot"
    loader = boot / "loader"
    if loader.exists() or loader.is_symlink():
        return
    (boot / "loader.0").mkdir(parents=True, exist_ok=True)
    (boot / "loader.0" / "uEnv.txt").touch()
    loader.symlink_to("loader.0")


def find_deployment(sysroot: Path, os_name: str, commit: str) -> Path:
    found = sorted((sysroot / "ostree" / "deploy" / os_name / "deploy").glob(f"{commit}.*"))
    found = [p for p in found if p.is_dir()]
    if len(found) != 1:
        raise BuildError(f"expected one deployment of {commit} in {sysroot}, found {len(found)}")
    return found[0]


def deploy(ctx: BuildContext) -> Path:
    """Build the sysroot and return the deployment's path."""
    o = ctx.plan.ostree
    sysroot = ctx.dirs.sysroot
    ctx.commit = resolve_commit(ctx)

    ctx.step = "sysroot"
    ctx.monitor.step(f"sysroot for {o.os}")
    ostree.admin_init_fs(sysroot)
    ostree.admin_os_init(sysroot, o.os)
    repo = sysroot / "ostree" / "repo"
    bootloader = BOOTLOADERS.get(ctx.plan.build.arch, "none")
    ostree.set_config(repo, "sysroot.bootloader", bootloader)
    if bootloader == "uboot":
        seed_uboot_env(sysroot)

    ctx.step = "remote"
    deploy_url = o.deploy_url or o.url
    collection_id = o.collection_id if o.p2p else ""
    if o.p2p and not collection_id:
        raise BuildError("ostree.p2p is on but ostree.collection_id is empty")
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        keys = key_files(ctx, Path(scratch))
        ostree.add_remote(
            repo, o.remote, ctx.reveal(deploy_url), keys=keys, collection_id=collection_id,
            private=deploy_url != ctx.reveal(deploy_url),
            branches=[ctx.deploy_ref], verify=o.gpg_verify,
        )

    ctx.step = "pull-local"
    ctx.monitor.step(f"pull-local {ctx.commit[:12]}")
    ostree.pull_local(repo, ctx.dirs.ostree_repo, ctx.commit)
    refspec = f"{o.remote}:{ctx.deploy_ref}"
    ostree.set_ref(repo, refspec, ctx.commit)

    ctx.step = "deploy"
    ctx.monitor.step(f"deploy {refspec}")
    ostree.admin_deploy(sysroot, o.os, refspec, o.kernel_args)
    deployment = find_deployment(sysroot, o.os, ctx.commit)
    (ctx.dirs.work / "deployment").write_text(f"{deployment}\n")
    log.info("deployed %s at %s", ctx.commit, deployment)
    return deployment
