"""Running the plan's hooks with the legacy environment.

The compiler already chose each hook file (recipe dir, legacy localdir,
built-in) and pinned its sha256; this module only refuses a file that changed
since, builds the `EIB_*` environment old hooks expect, and runs the hook:
executable files directly, others sourced by bash after the shell library,
`.chroot` hooks inside the deployment.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pwd
import shlex
import shutil
from pathlib import Path
from typing import Any

from eib import paths
from eib.errors import BuildError
from eib.execute.chroot import chroot_mounts
from eib.execute.context import BuildContext
from eib.execute.logs import stream_command
from eib.execute.mounts import kill_processes_under
from eib.model.plan import CACHEDIR_TOKEN, HookStep, Plan

log = logging.getLogger("eib.hooks")

CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PATH = CHROOT_PATH
# Inputs of the build itself, never credentials: reproducible hooks need it.
PASSED_THROUGH = ("SOURCE_DATE_EPOCH",)


def plan_env(plan: Plan, values: Any = None) -> dict[str, str]:
    """The real `EIB_*` values: the plan holds `<secret:NAME>` tokens."""
    from eib.secrets import runtime_env

    return runtime_env(plan, values)


def _variant_env(plan: Plan) -> dict[str, str]:
    """`EIB_*` facts every hook relies on, should the plan's environment lack them."""
    b, o = plan.build, plan.ostree
    return {
        "EIB_PRODUCT": b.product,
        "EIB_BRANCH": b.branch,
        "EIB_ARCH": b.arch,
        "EIB_PLATFORM": b.platform,
        "EIB_PERSONALITY": b.personality,
        "EIB_SERIES": b.series,
        "EIB_BUILD_VERSION": b.build_version,
        "EIB_OSTREE_REF": o.ref,
        "EIB_OSTREE_REF_DEPLOY": o.ref_deploy or o.ref,
        "EIB_OSTREE_REMOTE": o.remote,
        "EIB_OSTREE_OS": o.os,
        "EIB_OSTREE_URL": o.url,  # revealed with the rest of the environment
    }


def hook_env(ctx: BuildContext) -> dict[str, str]:
    """The environment of every hook of this build (host-side paths).

    Built from scratch, as the legacy builder's `env -` chroot did: eib's
    own environment may hold cloud credentials and tokens, which hooks (and
    everything they start) must not see unless the recipe names them in
    `hooks.pass_env`.
    """
    env = base_env(ctx.plan.pass_env)
    env.update(_variant_env(ctx.plan))
    env.update(ctx.env)
    d = ctx.dirs
    # The legacy checkout (or the recipe's dir): hooks find their data files there.
    srcdir = Path(ctx.plan.build.srcdir) if ctx.plan.build.srcdir else paths.SOURCE_DIR
    env.update(
        {
            "EIB_OUTDIR": str(d.output),
            "EIB_TMPDIR": str(d.tmp),
            "EIB_BUILDDIR": str(d.work),
            "EIB_CONTENTDIR": str(d.content),
            "EIB_MANIFESTDIR": str(d.manifest),
            "EIB_CACHEDIR": str(d.cache),
            "EIB_SRCDIR": str(srcdir),
            "EIB_DATADIR": str(srcdir / "data"),
            "EIB_HELPERSDIR": str(srcdir / "helpers"),
            "EIB_OUTVERSION": ctx.plan.outputs.outversion,
            "EIB_OSTREE_COMMIT": ctx.commit,
            "OSTREE_SYSROOT": str(d.sysroot),
            "OSTREE_VAR": str(ctx.os_var),
        }
    )
    if ctx.deployment is not None:
        env["OSTREE_DEPLOYMENT"] = str(ctx.deployment)
    # Values the recipe derived from `${build:cachedir}` name this run's cache dir.
    cache = str(d.cache)
    return {k: v.replace(CACHEDIR_TOKEN, cache) for k, v in env.items()}


def base_env(pass_env: list[str]) -> dict[str, str]:
    """The fixed variables every hook gets, plus the named ones from eib's environment."""
    env = {
        "PATH": HOST_PATH,
        "LANG": "C.UTF-8",
        "SHELL": "/bin/bash",
        "TERM": "dumb",  # hook output goes to the build log, not a terminal
        "HOME": _home(),
    }
    for name in (*PASSED_THROUGH, *pass_env):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _home() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return "/"


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


def run_hook(ctx: BuildContext, hook: HookStep) -> None:
    """Run one hook; a non-zero exit raises BuildError naming it."""
    path = materialize_hook(hook, ctx.dirs.work / "hooks")
    env = hook_env(ctx)
    ctx.dirs.tmp.mkdir(parents=True, exist_ok=True)
    prefix = f"[{hook.group}/{hook.name}] "
    log.info("running hook %s/%s (%s)", hook.group, hook.name, path)
    if hook.chroot:
        if ctx.deployment is None:
            log.info("skipping %s/%s: no deployment to chroot into yet", hook.group, hook.name)
            return
        with chroot_mounts(ctx.deployment, ctx.dirs.sysroot, ctx.os_var) as tmp:
            inside = tmp / hook.name
            shutil.copy2(path, inside)
            env.update(
                {
                    "PATH": CHROOT_PATH,
                    "OSTREE_DEPLOYMENT": "/",
                    "OSTREE_SYSROOT": "/sysroot",
                    "OSTREE_VAR": "/var",
                }
            )
            command = [f"/tmp/{hook.name}"] if hook.executable else ["/bin/sh", "-e"]
            if not hook.executable:
                command.append(f"/tmp/{hook.name}")
            status, tail = stream_command(
                ["chroot", str(ctx.deployment), *command],
                env=env,
                cwd=None,
                logger=log,
                prefix=prefix,
                after_exit=functools.partial(kill_processes_under, ctx.deployment),
            )
    else:
        status, tail = stream_command(
            _host_argv(hook, path), env=env, cwd=ctx.dirs.tmp, logger=log, prefix=prefix
        )
    if status != 0:
        last = f"; last output: {tail[-1]}" if tail else ""
        log.error("hook %s/%s exited with status %d", hook.group, hook.name, status)
        raise BuildError(
            f"hook {hook.group}/{hook.name} exited with status {status}{last}",
            stage=ctx.stage,
            step=f"hook {hook.name}",
        )


def run_hooks(ctx: BuildContext, group: str, *, keep_going: bool = False) -> None:
    """Run the plan's hooks of `group` in order; `keep_going` logs failures instead."""
    for hook in ctx.plan.hooks_of(group):
        ctx.step = f"hook {hook.name}"
        ctx.monitor.step(f"hook {hook.group}/{hook.name}")
        try:
            run_hook(ctx, hook)
        except BuildError as err:
            if not keep_going:
                raise
            log.error("%s", err)
