"""The buildroot: host-side hooks run inside the OS tree being built, not on the host.

The legacy builder checked the pulled OS commit out and ran all its stages
and hooks in it (`bwrap --dev-bind ROOT / CMD`), so a hook's `python3`,
`flatpak` or `ostree` is the target OS's, whatever the build host runs.
eib does the same for host-side hooks when `build.buildroot` says so (a
legacy INI tree: whenever the OS has bash).

Fast and safe: the commit is checked out once per commit as hard links
of the cache repo's objects (`<cache>/buildroot/<commit>`, ~0.7 s for the
Debian OS against ~3.3 s for a `--force-copy`, and no 560 MB copy per
build), then reused read-only as the lower dir of an overlayfs whose upper
dir is in the work dir: a write in the buildroot is copied up and never
reaches the repo's objects.  Only the overlay is mounted on the host (below
the work dir, so a killed build's is reclaimed by the next run like every
other mount there); the binds each hook sees are made by bwrap in the
hook's own mount namespace and vanish with it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eib import paths
from eib.errors import BuildError
from eib.execute.context import BuildContext, cache_repo
from eib.execute.hookenv import srcdir_of
from eib.execute.inroot import resolve_in_root
from eib.execute.mounts import MountStack, cleanup_work_dir, remove_tree
from eib.tools.ostree import ostree

log = logging.getLogger("eib.execute.buildroot")

CHECKOUTS = "buildroot"  # below the cache dir: one hardlink checkout per commit
WORK = "buildroot"  # below the work dir: the overlay's upper, work and mount dirs
READY = ".eib-buildroot-ready"
RESOLV_CONF = Path("/etc/resolv.conf")
# The host's kernel interfaces, bound at the same paths (as the legacy builder did).
SYSTEM_BINDS = (("--dev-bind", "/dev"), ("--bind", "/proc"), ("--bind", "/sys"),
                ("--bind", "/run/udev"))
# Symlinks of an OSTree commit that must be real dirs for tools run in it.
REAL_DIRS = ("home", "root", "opt", "usr/local")


@dataclass
class Buildroot:
    """Where host-side hooks of this build run: `root` is None when they run on the host."""

    commit: str = ""
    root: Path | None = None
    binds: list[str] = field(default_factory=list)
    mounts: MountStack = field(default_factory=MountStack)
    error: BuildError | None = None

    def wrap(self, argv: Sequence[str], cwd: Path) -> list[str]:
        """`argv` as it runs: through bwrap in the buildroot, or unchanged."""
        if self.error is not None:
            raise self.error
        if self.root is None:
            return list(argv)
        return ["bwrap", "--dev-bind", str(self.root), "/", *self.binds,
                "--chdir", str(cwd), "--die-with-parent", "--", *argv]


def host_side_argv(ctx: BuildContext, argv: Sequence[str], cwd: Path) -> list[str]:
    """A host-side hook's argv, in the buildroot when the build uses one.

    The buildroot is made on first use and kept until the build ends
    (`close_buildroot`); a build whose hooks all run in the deployment
    never pays for it.
    """
    state = ctx.buildroot
    if not isinstance(state, Buildroot):
        state = Buildroot()
        ctx.buildroot = state
        try:
            _open(ctx, state)
        except BuildError as err:
            state.error = err
    return state.wrap(argv, cwd)


def close_buildroot(ctx: BuildContext) -> None:
    """Unmount the overlay and delete its upper dir; the cached checkout stays."""
    state = ctx.buildroot
    if isinstance(state, Buildroot):
        state.mounts.close()
        ctx.buildroot = None
    remove_tree(ctx.dirs.work / WORK)


def release_work_dir(ctx: BuildContext) -> None:
    """Unmount what the build left under its work dir, the buildroot first (it knows
    its overlay); failures are only logged, never hiding the build's own result."""
    try:
        close_buildroot(ctx)
    except Exception:
        log.exception("removing the buildroot")
    try:
        cleanup_work_dir(ctx.dirs.work)
    except Exception:
        log.exception("cleaning up %s", ctx.dirs.work)


def _open(ctx: BuildContext, state: Buildroot) -> None:
    setting = ctx.plan.build.buildroot
    required = setting is True  # else "auto": only when the OS tree can run the hooks
    if setting is False:
        log.info("host-side hooks run on the host (build.buildroot is false)")
        return
    from eib.execute.deploy import resolve_commit

    try:
        commit = resolve_commit(ctx)
    except BuildError as err:
        if required:
            raise
        log.info("host-side hooks run on the host: no OS commit to make a buildroot of (%s)",
                 err.message)
        return
    state.commit = commit
    repo = ctx.dirs.ostree_repo
    if not _has_bash(repo, commit):
        if required:
            raise BuildError(f"build.buildroot is true but the OS tree of {commit[:12]} has "
                             "no /bin/bash to run host-side hooks with",
                             stage=ctx.stage, step="buildroot")
        log.info("host-side hooks run on the host: the OS tree of %s has no /bin/bash",
                 commit[:12])
        return
    lower = _checkout(ctx.dirs.cache, repo, commit)
    top = ctx.dirs.work / WORK
    remove_tree(top)
    root = top / "root"
    for path in (top / "upper", top / "work", root):
        path.mkdir(parents=True)
    for path in (lower, top):
        if "," in str(path) or ":" in str(path):
            raise BuildError(f"cannot mount the buildroot: {path} holds ',' or ':'",
                             stage=ctx.stage, step="buildroot")
    options = f"lowerdir={lower},upperdir={top / 'upper'},workdir={top / 'work'}"
    state.mounts.mount(root, ["-t", "overlay", "overlay", "-o", options])
    state.binds = _binds(ctx)
    _prepare(root)
    state.root = root
    log.info("host-side hooks run in the buildroot of %s", commit)


def _has_bash(repo: Path, commit: str) -> bool:
    """The tree has bash: /usr/bin/bash (merged /usr) or /bin/bash, checked without a checkout."""
    for path in ("/usr/bin/bash", "/bin/bash"):
        if ostree([f"--repo={repo}", "ls", commit, path], check=False).returncode == 0:
            return True
    return False


def _checkout(cache: Path, repo: Path, commit: str) -> Path:
    """The commit as hard links of the repo's objects, laid out as the legacy buildroot was.

    Only directory entries change here (renames, symlinks replaced by dirs,
    one unlink); no object's content is written.  Checkouts of other commits
    are removed: the cache keeps one.
    """
    top = cache / CHECKOUTS
    done = top / commit
    if (done / READY).is_file():
        return done
    top.mkdir(parents=True, exist_ok=True)
    for old in top.iterdir():
        remove_tree(old)
    partial = top / f".partial-{commit}"
    try:
        ostree([f"--repo={repo}", "checkout", "-H", commit, str(partial)])
    except BuildError as err:
        # The repo on another file system than the checkout (a mount in the cache dir).
        log.info("hard-link checkout failed (%s); copying instead", err.message.splitlines()[-1])
        remove_tree(partial)
        ostree([f"--repo={repo}", "checkout", "--force-copy", commit, str(partial)])
    etc, usr_etc = partial / "etc", partial / "usr" / "etc"
    if usr_etc.is_dir() and not etc.exists():
        usr_etc.rename(etc)
    for name in REAL_DIRS:
        path = partial / name
        if path.is_symlink():
            path.unlink()
        path.mkdir(mode=0o700 if name == "root" else 0o755, parents=True, exist_ok=True)
    (partial / "usr" / "lib" / "tmpfiles.d" / "ostree.conf").unlink(missing_ok=True)
    for name in ("sgml-base", "xml-core"):
        (partial / "var" / "lib" / name).mkdir(parents=True, exist_ok=True)
    (partial / READY).touch()
    partial.rename(done)
    return done


def prune_checkouts(cache: Path) -> list[str]:
    """Remove the cached checkouts whose commit the cache repo has pruned: their hard
    links would keep its objects' space taken.  Returns the commits removed."""
    top = cache / CHECKOUTS
    if not top.is_dir():
        return []
    repo = cache_repo(cache)
    removed = []
    for path in sorted(top.iterdir()):
        name = path.name.removeprefix(".partial-")
        commit_object = repo / "objects" / name[:2] / f"{name[2:]}.commit"
        kept = path.name == name and (path / READY).is_file() and commit_object.is_file()
        if not kept:
            remove_tree(path)
            removed.append(name)
    return removed


def _binds(ctx: BuildContext) -> list[str]:
    """bwrap's binds: the host's kernel interfaces, then every dir hooks name, at their paths.

    Sorted, and a dir below one already bound on the same device is left
    out (the recursive bind shows it), as the legacy builder did.
    """
    d, build = ctx.dirs, ctx.plan.build
    wanted = [d.work, d.output, d.cache, srcdir_of(ctx.plan), paths.SOURCE_DIR / "compat"]
    wanted += [Path(p) for p in (build.localdir, build.sysconfdir) if p]
    for name in build.buildroot_mounts:
        if not Path(name).is_absolute() or not os.path.lexists(name):
            raise BuildError(f"build.buildroot_mounts: {name} is not an existing absolute path",
                             stage=ctx.stage, step="buildroot")
        wanted.append(Path(name))
    binds = _system_binds()
    kept: list[Path] = []
    for path in sorted({p for p in wanted if p.exists()}):
        if any(path.is_relative_to(k) and path.stat().st_dev == k.stat().st_dev for k in kept):
            continue
        kept.append(path)
        binds += ["--bind", str(path), str(path)]
    return binds


def _system_binds() -> list[str]:
    binds: list[str] = []
    for flag, system in SYSTEM_BINDS:
        if os.path.isdir(system):
            binds += [flag, system, system]
    return binds


def _prepare(root: Path) -> None:
    """The host's resolv.conf, then the OS's users and tmpfiles, as the OS would boot.

    The tools see only the host's kernel interfaces, never the build's dirs:
    `systemd-tmpfiles --remove --boot` empties `/tmp`, where a work or
    output dir may be bound.
    """
    resolv = root / "etc" / "resolv.conf"
    if RESOLV_CONF.is_file() and resolv.parent.is_dir():
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        shutil.copyfile(RESOLV_CONF, resolv)
    steps = (("systemd-sysusers",), ("systemd-tmpfiles", "--create", "--remove", "--boot", "-E"))
    for argv in steps:
        tool = f"/usr/bin/{argv[0]}"
        if not resolve_in_root(root, tool).is_file():
            continue
        bwrap = ["bwrap", "--dev-bind", str(root), "/", *_system_binds(), "--die-with-parent",
                 tool, *argv[1:]]
        proc = subprocess.run(bwrap, capture_output=True, text=True, check=False)
        for line in (proc.stdout + proc.stderr).splitlines():
            log.debug("  %s: %s", argv[0], line)
        if proc.returncode != 0:
            # tmpfiles complains of an OSTree tree's symlinks (/srv → var/srv) and goes on.
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            log.info("buildroot: %s exited with %d (%s); going on", argv[0], proc.returncode,
                     last[0])
    # FHS's /var/tmp, where ostree and flatpak stage files: a booted OS gets it from
    # tmpfiles (`q /var/tmp`), which Debian leaves to its packages' /var, empty in OSTree.
    var_tmp = root / "var" / "tmp"
    if not var_tmp.is_symlink() and not var_tmp.exists():
        var_tmp.mkdir(parents=True)
        var_tmp.chmod(0o1777)
