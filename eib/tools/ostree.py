"""Typed wrappers over the `ostree` command line.

The executor drives OSTree through its CLI rather than the GObject bindings:
the CLI is always installed with ostree, needs no PyGObject build, and every
command lands in the build log exactly as a person would retype it.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eib.errors import BuildError
from eib.execute.diskfull import no_space
from eib.network import Deadline, NetworkLimits
from eib.tools.run import run
from eib.tools.watched import dir_state, run_watched

log = logging.getLogger("eib.tools.ostree")

# Phrases ostree prints when a commit's signature is missing or does not
# verify; a pull failing with one of them is refused at once, never retried.
GPG_FAILURES = (
    "GPG verification enabled, but no signatures found",
    "GPG signatures found, but none are in trusted keyring",
    "public key not found",
    "BAD signature",
    "signature made by expired key",
    "Can't check signature",
    "no signatures found",
)


class GpgVerifyError(BuildError):
    """The pulled commit is unsigned or signed by a key the plan does not trust."""


# What ostree says when the file system it writes to is full (or past the
# repo's `min-free-space-percent`, which it checks before writing).
DISK_FULL = ("No space left on device", "min-free-space")


def _target(args: Sequence[str | Path]) -> Path | None:
    """The repo or sysroot an ostree command writes to."""
    for arg in map(str, args):
        for option in ("--repo=", "--sysroot="):
            if arg.startswith(option):
                return Path(arg.removeprefix(option))
    return None


def _check_space(output: str, target: Path | None) -> None:
    """A full disk is a full disk: `no space left on <mount point>`, not ostree's words."""
    if target is not None and any(phrase in output for phrase in DISK_FULL):
        raise no_space(target)


def ostree(args: Sequence[str | Path], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ostree ARGS`, log its output, and raise BuildError with its last words."""
    proc = run(["ostree", *args], check=False)
    for stream in (proc.stdout, proc.stderr):
        for line in (stream or "").splitlines():
            log.debug("  %s", line)
    if check and proc.returncode != 0:
        _check_space((proc.stderr or "") + (proc.stdout or ""), _target(args))
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        argv = ["ostree", *(str(a) for a in args)]
        raise BuildError(f"'{shlex.join(argv)}' exited with {proc.returncode}{detail}")
    return proc


def init_repo(repo: Path, mode: str) -> None:
    """Create `repo` in `mode` unless it already is a repository."""
    if (repo / "config").is_file():
        return
    repo.mkdir(parents=True, exist_ok=True)
    ostree(["init", f"--repo={repo}", f"--mode={mode}"])


def remote_exists(repo: Path, remote: str) -> bool:
    proc = ostree(["remote", "list", f"--repo={repo}"])
    return remote in proc.stdout.split()


def add_remote(
    repo: Path,
    remote: str,
    url: str,
    *,
    keys: Sequence[Path] = (),
    collection_id: str = "",
    branches: Sequence[str] = (),
    private: bool = False,
    verify: bool = True,
) -> None:
    """(Re)create `remote` with GPG verification on (unless `verify` is false, which the
    recipe must say explicitly) and exactly `keys` trusted.

    The remote is written into the repo's config file, not passed to
    `ostree remote add`: a URL may carry a password, and command lines are
    readable by every user in /proc.  A `private` URL leaves the config 0600
    inside a 0700 repo (ostree rewrites the config with default modes later).
    """
    if remote_exists(repo, remote):
        ostree(["remote", "delete", f"--repo={repo}", remote])
    lines = [f'[remote "{remote}"]', f"url={_keyfile_value(url)}",
             f"gpg-verify={'true' if verify else 'false'}"]
    if collection_id:
        lines.append(f"collection-id={_keyfile_value(collection_id)}")
    if branches:
        items = (_keyfile_value(b).replace(";", "\\;") for b in branches)
        lines.append("branches=" + "".join(f"{item};" for item in items))
    config = repo / "config"
    if private:
        repo.chmod(0o700)
        config.chmod(0o600)
    text = config.read_text(encoding="utf-8")
    with open(config, "a", encoding="utf-8") as f:
        f.write(("" if text.endswith("\n") else "\n") + "\n" + "\n".join(lines) + "\n")
    for key in keys:
        ostree(["remote", "gpg-import", f"--repo={repo}", f"--keyring={key}", remote])


def _keyfile_value(text: str) -> str:
    """`text` escaped as a GKeyFile value (what `ostree remote add` would write)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    out = out.replace("\r", "\\r")
    return "\\s" + out[1:] if out.startswith(" ") else out


def pull(repo: Path, remote: str, ref: str, commit: str = "", *,
         deadline: Deadline | None = None) -> None:
    """Pull `ref` (or its pinned `commit`) from `remote` under the network limits.

    GPG failures raise GpgVerifyError; a pull that makes no progress for the
    stall timeout raises NetworkStall, one past `deadline` NetworkDeadline.
    Progress is what lands in the repo's `tmp/` (fetched files, the staging
    dir of the transaction): ostree prints nothing while it pulls into a
    pipe, but every object it receives is written there first.
    """
    what = f"{ref}@{commit}" if commit else ref
    deadline = deadline or NetworkLimits.from_env().start()
    argv = ["ostree", "pull", f"--repo={repo}", remote, what]
    proc = run_watched(argv, lambda: dir_state(repo / "tmp"), deadline,
                       f"pulling '{what}' from remote '{remote}'")
    for stream in (proc.stdout, proc.stderr):
        for line in (stream or "").splitlines():
            log.debug("  %s", line)
    if proc.returncode == 0:
        return
    output = (proc.stderr or "") + (proc.stdout or "")
    last = output.strip().splitlines()[-1:] or [f"exited with {proc.returncode}"]
    _check_space(output, repo)
    if any(phrase.lower() in output.lower() for phrase in GPG_FAILURES):
        raise GpgVerifyError(
            f"refusing commit of '{ref}' from remote '{remote}': it is unsigned or not "
            f"signed by a key in ostree.gpg_keys ({last[0].removeprefix('error: ')})"
        )
    raise BuildError(f"pulling '{what}' from remote '{remote}' failed: {last[0]}")


def rev_parse(repo: Path, ref: str) -> str:
    return ostree(["rev-parse", f"--repo={repo}", ref]).stdout.strip()


@dataclass(frozen=True)
class CommitInfo:
    """What `ostree show` says of a commit."""

    commit: str
    timestamp: int
    version: str


def commit_info(repo: Path, rev: str) -> CommitInfo:
    """The commit `rev` resolves to, with its time (a locked build's SOURCE_DATE_EPOCH)."""
    shown = ostree(["show", f"--repo={repo}", rev]).stdout
    first = re.match(r"commit ([0-9a-f]{64})$", shown.splitlines()[0] if shown else "")
    if first is None:
        raise BuildError(f"cannot read commit {rev}")
    commit = first.group(1)
    date = re.search(r"^Date:\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000$", shown, re.M)
    if date is None:
        raise BuildError(f"cannot read the time of commit {commit}")
    stamp = datetime.strptime(date.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    version = re.search(r"^Version:\s+(.*)$", shown, re.M)
    return CommitInfo(commit, int(stamp.timestamp()), version.group(1).strip() if version else "")


def set_ref(repo: Path, ref: str, commit: str) -> None:
    """Point `ref` (may be `remote:ref`) at `commit`, replacing what it pointed at."""
    ostree(["refs", f"--repo={repo}", "--force", f"--create={ref}", commit])


def metadata(repo: Path, rev: str, key: str) -> str:
    """A commit metadata string (e.g. `version`), or '' when the commit has none."""
    proc = ostree(["show", f"--repo={repo}", f"--print-metadata-key={key}", rev], check=False)
    if proc.returncode != 0:
        return ""
    value = proc.stdout.strip()
    # GVariant text form of a string: 'value'
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1]
    return value


def update_summary(repo: Path) -> None:
    ostree(["summary", "-u", f"--repo={repo}"])


def prune(repo: Path, keep: int) -> None:
    """Keep `keep` commits of each ref's history and drop unreachable objects."""
    ostree(["prune", f"--repo={repo}", "--refs-only", f"--depth={max(keep - 1, 0)}"])


def fsck(repo: Path) -> None:
    ostree(["fsck", f"--repo={repo}"])


def set_config(repo: Path, key: str, value: str) -> None:
    ostree(["config", f"--repo={repo}", "set", key, value])


def pull_local(repo: Path, source_repo: Path, commit: str) -> None:
    ostree(["pull-local", f"--repo={repo}", str(source_repo), commit])


def admin_init_fs(sysroot: Path) -> None:
    sysroot.mkdir(parents=True, exist_ok=True)
    ostree(["admin", "init-fs", str(sysroot)])


def admin_os_init(sysroot: Path, os_name: str) -> None:
    ostree(["admin", "os-init", f"--sysroot={sysroot}", os_name])


def admin_deploy(sysroot: Path, os_name: str, refspec: str, kernel_args: Sequence[str]) -> None:
    kargs = [f"--karg={arg}" for arg in kernel_args]
    ostree(["admin", "deploy", f"--sysroot={sysroot}", f"--os={os_name}", *kargs, refspec])
