"""Running the plan's hooks with the legacy environment.

The compiler already chose each hook file (recipe dir, legacy localdir,
built-in) and pinned its sha256; this module only refuses a file that changed
since, and runs the hook as the legacy builder did: executable files
directly, others sourced by bash after the shell library, `.chroot` hooks
inside the deployment.  The image group runs with the deployment mounted once
for all its hooks (`eib.execute.hookroot`); the environment comes from
`eib.execute.hookenv`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shlex
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from eib import paths
from eib.errors import BuildError
from eib.execute.buildroot import host_side_argv
from eib.execute.context import BuildContext
from eib.execute.hookenv import CHROOT_PATH, chroot_env, hook_env, plan_env, srcdir_of
from eib.execute.hookfiles import write_hook_files
from eib.execute.hookroot import ChrootPaths, image_group_root
from eib.execute.inroot import resolve_in_root
from eib.execute.logs import stream_command
from eib.execute.mounts import kill_processes_under
from eib.model.plan import HookStep, NativeStep

# Re-exported: callers imported the environment from here.
__all__ = ["hook_env", "materialize_hook", "plan_env", "run_hook", "run_hooks"]

log = logging.getLogger("eib.hooks")

# The group whose `.chroot` hooks run inside the mounted deployment (content
# `.chroot` hooks run in it unmounted; other groups skip them).
CHROOT_GROUPS = ("image",)


def materialize_hook(hook: HookStep, directory: Path) -> Path:
    """Write the hook the plan carries into `directory/<group>/<name>`, checked by sha256.

    Hooks run from the plan's copy, never from the recipe tree, so a saved
    plan builds where the recipe is not and a file edited after `eib plan`
    cannot change what runs.
    """
    data = hook.data()
    if hashlib.sha256(data).hexdigest() != hook.sha256.removeprefix("sha256:"):
        raise BuildError(
            f"hook {hook.group}/{hook.name}: its content does not match its sha256 in the plan "
            "(the plan was edited); make the plan again"
        )
    path = directory / hook.group / hook.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                 0o755 if hook.executable else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


def _host_argv(hook: HookStep, path: Path) -> list[str]:
    if hook.executable:
        return [str(path)]
    library = paths.SHELL_LIBRARY
    script = f"source {shlex.quote(str(library))}; " if library.is_file() else ""
    script += f"source {shlex.quote(str(path))}"
    return ["bash", "-e", "-c", script]


def _chroot_argv(deployment: Path, name: str, executable: bool) -> list[str]:
    """Executable: run as it is (no shebang: /bin/sh); otherwise `bash -ex`, or `sh -e`
    in an OS without bash."""
    if executable:
        return [f"/tmp/{name}"]
    if resolve_in_root(deployment, "/bin/bash").is_file():
        return ["/bin/bash", "-ex", f"/tmp/{name}"]
    return ["/bin/sh", "-e", f"/tmp/{name}"]


def run_hook(ctx: BuildContext, hook: HookStep, root: ChrootPaths | None = None) -> None:
    """Run one hook; a non-zero exit raises BuildError naming it.

    `root`: the deployment is mounted for the group (image group only).
    """
    path = materialize_hook(hook, ctx.dirs.work / "hooks")
    env = hook_env(ctx, hook.group)
    if root is not None and root.roots:
        env["EIB_CACHEDIR_CHROOT"] = root.roots["EIB_CACHEDIR"]
        if "EIB_SRCDIR" in root.roots:
            env["EIB_SRCDIR_CHROOT"] = root.roots["EIB_SRCDIR"]
    ctx.dirs.tmp.mkdir(parents=True, exist_ok=True)
    prefix = f"[{hook.group}/{hook.name}] "
    if hook.chroot:
        if root is None or ctx.deployment is None:
            log.info("Skipping hook, no chroot available: %s/%s", hook.group, hook.name)
            return
        log.info("running hook %s/%s in the deployment (%s)", hook.group, hook.name, path)
        inside = resolve_in_root(ctx.deployment, f"/tmp/{hook.name}")
        shutil.copy2(path, inside)
        env = chroot_env(env, root.roots, root.python, keep=tuple(ctx.plan.pass_env))
        env.update({"PATH": CHROOT_PATH, "OSTREE_DEPLOYMENT": "/",
                    "OSTREE_SYSROOT": "/sysroot", "OSTREE_VAR": "/var"})
        status, tail = stream_command(
            ["chroot", str(ctx.deployment),
             *_chroot_argv(ctx.deployment, hook.name, hook.executable)],
            env=env,
            cwd=None,
            logger=log,
            prefix=prefix,
            after_exit=functools.partial(kill_processes_under, ctx.deployment),
        )
        if status == 0:
            inside.unlink(missing_ok=True)
    else:
        log.info("running hook %s/%s (%s)", hook.group, hook.name, path)
        # In the checkout, as the legacy run_hooks ran them: relative paths of
        # the config (`data/…`) mean files of the checkout (the recipe's dir).
        srcdir = srcdir_of(ctx.plan)
        cwd = srcdir if srcdir.is_dir() else ctx.dirs.tmp
        argv = host_side_argv(ctx, _host_argv(hook, path), cwd)
        status, tail = stream_command(argv, env=env, cwd=cwd, logger=log, prefix=prefix)
    if status != 0:
        last = f"; last output: {tail[-1]}" if tail else ""
        log.error("hook %s/%s exited with status %d", hook.group, hook.name, status)
        raise BuildError(
            f"hook {hook.group}/{hook.name} exited with status {status}{last}",
            stage=ctx.stage,
            step=f"hook {hook.name}",
        )


@contextlib.contextmanager
def _group_root(ctx: BuildContext, group: str, hooks: list[HookStep]) -> Iterator[
        ChrootPaths | None]:
    """The image group's mounted deployment, when there is one and a hook to run.

    Content `.chroot` hooks run in the bare deployment, as the legacy builder
    ran them: nothing mounted, no path rewritten, `/tmp` the OS's own.
    """
    if ctx.deployment is None or not hooks:
        yield None
    elif group in CHROOT_GROUPS:
        with image_group_root(ctx) as root:
            yield root
    elif group == "content":
        yield ChrootPaths()
    else:
        yield None


def run_hooks(
    ctx: BuildContext,
    group: str,
    *,
    keep_going: bool = False,
    natives: Mapping[NativeStep, Callable[[], object]] | None = None,
) -> None:
    """Run the plan's hooks of `group` in order; `keep_going` logs failures instead.

    A native step runs `natives[step]` in the hook's place, so the hooks after
    it see its result (the apps installed after `50-flatpak.chroot`).
    """
    hooks = ctx.plan.hooks_of(group)
    if hooks:
        log.info("Running %s hooks", group)
        write_hook_files(ctx)
    with _group_root(ctx, group, hooks) as root:
        for hook in hooks:
            ctx.step = f"hook {hook.name}"
            ctx.monitor.step(f"hook {hook.group}/{hook.name}")
            try:
                if hook.native is not None:
                    _run_native(hook, (natives or {}).get(hook.native))
                else:
                    run_hook(ctx, hook, root)
            except BuildError as err:
                if not keep_going:
                    raise
                log.error("%s", err)


def _run_native(hook: HookStep, work: Callable[[], object] | None) -> None:
    if work is None:
        log.info("%s/%s: nothing to do (%s)", hook.group, hook.name, hook.native)
        return
    log.info("%s/%s: eib's own step (%s)", hook.group, hook.name, hook.native)
    work()
