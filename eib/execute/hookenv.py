"""The environment a hook runs in: the plan's `EIB_*` facts plus this run's paths.

Built from scratch, as the legacy builder's `env -` chroot did: eib's own
environment may hold cloud credentials and tokens, which hooks (and
everything they start) must not see unless the recipe names them in
`hooks.pass_env`.  The names and values follow the legacy builder's
contract, so its hooks run unchanged; `chroot_env` applies the legacy
rewrite for hooks that run inside the deployment.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eib import paths
from eib.execute.context import BuildContext
from eib.model.plan import CACHEDIR_TOKEN, Plan

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHROOT_PATH = HOST_PATH
# Inputs of the build itself, never credentials: reproducible hooks need it.
PASSED_THROUGH = ("SOURCE_DATE_EPOCH",)
# The caller's `EIB_*` knobs the legacy builder passed on to hooks.
CALLER_KNOBS = ("EIB_DEBUG", "EIB_HOOKSDIR")
CALLER_PREFIXES = ("EIB_RETRY_",)
# Where the cache and source dirs appear inside the deployment during the image group.
CACHEDIR_CHROOT = "/tmp/eos-image-builder"
SRCDIR_CHROOT = f"{CACHEDIR_CHROOT}/src"
# What a chroot hook keeps of the environment (besides EIB_*), as the legacy eib-chroot did,
# plus eib's own OSTREE_* names, which say where the deployment is from inside it.
CHROOT_KEPT = ("PATH", "SHELL", "LANG", "SHLVL", "TERM", "PS4", "PWD", "HOME",
               "OSTREE_DEPLOYMENT", "OSTREE_SYSROOT", "OSTREE_VAR", *PASSED_THROUGH)
COMPAT_PYTHON = paths.SOURCE_DIR / "compat" / "python"


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
        "EIB_USE_PRODUCTION_OSTREE": "true" if b.use_production_ostree else "false",
        "EIB_OSTREE_REF": o.ref,
        "EIB_OSTREE_REF_DEPLOY": o.ref_deploy or o.ref,
        "EIB_OSTREE_REMOTE": o.remote,
        "EIB_OSTREE_OS": o.os,
        "EIB_OSTREE_URL": o.url,  # revealed with the rest of the environment
        "EIB_OUTVERSION": plan.outputs.outversion,
    }


def srcdir_of(plan: Plan) -> Path:
    """The legacy checkout (or the recipe's dir): hooks find their data files there."""
    return Path(plan.build.srcdir) if plan.build.srcdir else paths.SOURCE_DIR


def hook_env(ctx: BuildContext, group: str = "") -> dict[str, str]:
    """The environment of a hook of `group` in this build (host-side paths)."""
    plan, d = ctx.plan, ctx.dirs
    env = base_env(plan.pass_env)
    env.update(_variant_env(plan))
    env.update(ctx.env)
    srcdir = srcdir_of(plan)
    env.update(
        {
            "EIB_OUTDIR": str(d.output),
            "EIB_TMPDIR": str(d.tmp),
            "EIB_BUILDDIR": str(d.work),
            "EIB_CONTENTDIR": str(d.content),
            "EIB_MANIFESTDIR": str(d.manifest),
            "EIB_CACHEDIR": str(d.cache),
            "EIB_SRCDIR": str(srcdir),
            "EIB_DATADIR": env.get("EIB_DATADIR") or str(srcdir / "data"),
            "EIB_HELPERSDIR": env.get("EIB_HELPERSDIR") or str(srcdir / "helpers"),
            "EIB_BASELIB": str(paths.SHELL_LIBRARY),
            "EIB_TMPCONFIG": str(d.tmp / "config.ini"),
            "EIB_TMPFULLCONFIG": str(d.tmp / "fullconfig.ini"),
            "EIB_OSTREE_REPODIR": str(d.ostree_repo),
            "EIB_OSTREE_CHECKOUT": str(d.sysroot),
            "EIB_OSTREE_COMMIT": ctx.commit,
            "EIB_DRY_RUN": "true" if ctx.dry_run else "false",
            "OSTREE_SYSROOT": str(d.sysroot),
            "OSTREE_VAR": str(ctx.os_var),
            "PYTHONPATH": python_path(plan, srcdir),
            "AWS_SHARED_CREDENTIALS_FILE": f"{plan.build.sysconfdir}/aws-credentials",
        }
    )
    if group:
        env["EIB_HOOK_GROUP"] = group
    if (srcdir / "helpers" / "git-ssh").is_file():
        env["GIT_SSH"] = str(srcdir / "helpers" / "git-ssh")
    if ctx.deployment is not None:
        env["OSTREE_DEPLOYMENT"] = str(ctx.deployment)
        env["OSTREE_CURRENT_DEPLOYMENT"] = ctx.deployment.name
    # Values the recipe derived from `${build:cachedir}` name this run's cache dir.
    cache = str(d.cache)
    return {k: v.replace(CACHEDIR_TOKEN, cache) for k, v in env.items()}


def python_path(plan: Plan, srcdir: Path) -> str:
    """The legacy `import eib` first, then the localdir's and the checkout's `lib/`.

    The compat module shadows any `lib/eib.py` of a legacy checkout: that
    one expects the legacy builder's dirs; eib's speaks this build's.
    """
    dirs = [COMPAT_PYTHON]
    if plan.build.localdir:
        dirs.append(Path(plan.build.localdir) / "lib")
    dirs.append(srcdir / "lib")
    return ":".join(str(p) for p in dirs if p.is_dir())


def base_env(pass_env: list[str]) -> dict[str, str]:
    """The fixed variables every hook gets, plus the named ones from eib's environment."""
    env = {
        "PATH": HOST_PATH,
        "LANG": "C.UTF-8",
        "SHELL": "/bin/bash",
        "TERM": "dumb",  # hook output goes to the build log, not a terminal
        "HOME": _home(),
    }
    for name, value in os.environ.items():
        if name in CALLER_KNOBS or name.startswith(CALLER_PREFIXES):
            env[name] = value
    for name in (*PASSED_THROUGH, *pass_env):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _home() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return "/"


def chroot_env(
    env: Mapping[str, str], roots: Mapping[str, str], python: str = "", keep: tuple[str, ...] = ()
) -> dict[str, str]:
    """The legacy eib-chroot rewrite of a host hook environment for inside the deployment.

    `roots` maps a directory variable (`EIB_CACHEDIR`) to where that dir is
    mounted inside.  Every other `EIB_X` starting with that dir gets the
    inside path (`EIB_X_CHROOT`, unless set already); then every
    `EIB_X_CHROOT` replaces `EIB_X`.  As in the legacy builder, only the
    leading path changes and a rewritten value's newlines become spaces.
    """
    out = {k: v for k, v in env.items()
           if k.startswith("EIB_") or k in CHROOT_KEPT or k in keep}
    for base in ("EIB_SRCDIR", "EIB_CACHEDIR"):
        out.pop(f"{base}_CHROOT", None)
    pythonpath = [python] if python else []
    if "EIB_SRCDIR" in roots:
        pythonpath.append(f"{roots['EIB_SRCDIR']}/lib")
    if pythonpath:
        out["PYTHONPATH"] = ":".join(pythonpath)
    for base, inside in roots.items():
        host = out.get(base, "")
        if not host:
            continue
        out.setdefault(f"{base}_CHROOT", inside)
        for name, value in list(out.items()):
            if (name.startswith("EIB_") and not name.endswith("_CHROOT")
                    and f"{name}_CHROOT" not in out and value.startswith(host + "/")):
                out[f"{name}_CHROOT"] = (inside + value[len(host):]).replace("\n", " ")
    for name in [n for n in out if n.startswith("EIB_") and n.endswith("_CHROOT")]:
        out[name.removesuffix("_CHROOT")] = out.pop(name)
    return out
