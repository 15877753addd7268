"""Resolving a plan's moving inputs to commits, over the network.

The OS ref is resolved with the ostree CLI in a throw-away repo: a remote
with `gpg-verify=true` and exactly the plan's keys, then `pull
--commit-metadata-only`, which fetches (and verifies the signature of) the
commit object alone, not the tree.  Flatpak refs are read from each remote's
signed summary through the installer's own resolution
(`eib.flatpak.install.read_remotes` + `flatpak_resolve.resolve`), so
the lock pins exactly the refs a build installs, dependencies included.

The same pull, given `ref@commit`, checks that a pinned commit is still on
its server: a lock is only useful while its commits exist.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from eib.errors import BuildError, EibError, UserError
from eib.lock.file import FlatpakPins, FlatpakRemotePin, LockEntry, OstreePin, variant_key
from eib.model.plan import Plan
from eib.tools.keys import key_files
from eib.tools.ostree import GPG_FAILURES, CommitInfo, ostree
from eib.tools.ostree import commit_info as _commit_info
from eib.tools.run import run

log = logging.getLogger("eib.lock")

REMOTE = "lock"
UNREACHABLE = (
    "couldn't connect",
    "could not connect",
    "could not resolve",
    "couldn't resolve",
    "connection refused",
    "timeout was reached",
    "operation timed out",
    "no route to host",
)
MISSING = ("http 404", "no such file or directory", "not found")


def _error(message: str) -> BuildError:
    return BuildError(message, stage="lock")


def key_fingerprints(key_file: Path) -> list[str]:
    """The primary-key fingerprints in an (armoured or binary) key file, in file order.

    Runs gpg with a throw-away home so the user's keyring is never read or written.
    """
    with tempfile.TemporaryDirectory(prefix="eib-gpg-") as home:
        Path(home).chmod(0o700)
        proc = run(
            ["gpg", "--homedir", home, "--batch", "--no-tty", "--with-colons",
             "--show-keys", str(key_file)],
            check=False,
        )
        run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    if proc.returncode != 0:
        raise UserError(f"not a GPG public key file: {key_file}")
    fingerprints: list[str] = []
    want = False
    for line in proc.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            want = True
        elif fields[0] == "fpr" and want:
            fingerprints.append(fields[9])
            want = False
        elif fields[0] == "sub":
            want = False
    if not fingerprints:
        raise UserError(f"no public key in {key_file}")
    return fingerprints


@contextmanager
def _scratch_repo() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="eib-lock-"))
    try:
        repo = top / "repo"
        ostree(["init", f"--repo={repo}", "--mode=bare-user"])
        yield repo
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _add_remote(repo: Path, url: str, keys: Sequence[Path]) -> None:
    verify = "true" if keys else "false"
    # `remote add --gpg-import` takes one file and saves a process; more keys are imported after.
    first = [f"--gpg-import={keys[0]}"] if keys else []
    ostree(["remote", "add", f"--repo={repo}", f"--set=gpg-verify={verify}", *first, REMOTE, url])
    for key in keys[1:]:
        ostree(["remote", "gpg-import", f"--repo={repo}", f"--keyring={key}", REMOTE])


def _pull_failure(output: str, url: str, ref: str, commit: str, what: str) -> EibError:
    """Turn ostree's pull error into a message that says what to do."""
    text = output.lower()
    last = (output.strip().splitlines() or ["(no output)"])[-1].removeprefix("error: ")
    if any(p in text for p in UNREACHABLE):
        return _error(f"cannot reach {what} remote {url}: {last}")
    if any(p.lower() in text for p in GPG_FAILURES):
        return _error(
            f"commit of {what} ref {ref} on {url} is unsigned or not signed by a trusted "
            f"key: {last}"
        )
    if "no such branch" in text or "no such ref" in text:
        return UserError(f"{what} ref {ref} is not on {url}", hint=last)
    if commit and any(p in text for p in MISSING):
        return _error(f"commit {commit} of ref {ref} is no longer on {url}; run eib lock again")
    return _error(f"cannot read {what} ref {ref} from {url}: {last}")


def _pull_metadata(repo: Path, url: str, ref: str, commit: str, what: str) -> None:
    target = f"{ref}@{commit}" if commit else ref
    proc = ostree(["pull", f"--repo={repo}", "--commit-metadata-only", REMOTE, target],
                  check=False)
    if proc.returncode != 0:
        raise _pull_failure((proc.stderr or "") + (proc.stdout or ""), url, ref, commit, what)


def resolve_ostree_ref(url: str, ref: str, keys: Sequence[Path], *, commit: str = "",
                       what: str = "OSTree") -> CommitInfo:
    """The commit `ref` points at on `url` now (or the pinned `commit`, checked to exist).

    The commit object is fetched and its signature verified against `keys`
    (no keys: unverified); the tree is not downloaded.
    """
    if not url or not ref:
        raise UserError("ostree.url and ostree.ref must be set to lock a recipe", key="ostree")
    with _scratch_repo() as repo:
        _add_remote(repo, url, keys)
        _pull_metadata(repo, url, ref, commit, what)
        info = _commit_info(repo, commit or f"{REMOTE}:{ref}")
    log.info("%s %s on %s = %s", what, ref, url, info.commit)
    return info


def check_commit_available(url: str, ref: str, commit: str, keys: Sequence[Path],
                           *, what: str = "OSTree") -> None:
    """Fail clearly when a pinned commit is gone from its server.

    The ostree stage (or `eib lock --check`) calls this before pulling a pin:
    BuildError "commit X of ref Y is no longer on URL; run eib lock again".
    """
    check_commits_available(url, {ref: commit}, keys, what=what)


def check_commits_available(url: str, pins: Mapping[str, str], keys: Sequence[Path],
                            *, what: str = "OSTree") -> None:
    """`check_commit_available` for several refs of one remote, in one scratch repo."""
    with _scratch_repo() as repo:
        _add_remote(repo, url, keys)
        for ref, commit in sorted(pins.items()):
            _pull_metadata(repo, url, ref, commit, what)


def check_plan_commit(plan: Plan) -> None:
    """`check_commit_available` for a plan whose `ostree.commit` is pinned (no-op otherwise)."""
    o = plan.ostree
    if not o.commit:
        return
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        check_commit_available(o.url, o.ref, o.commit, key_files(o.gpg_keys, Path(scratch)))


def _fingerprints(keys: Sequence[Path]) -> list[str]:
    found: list[str] = []
    for key in keys:
        found.extend(f for f in key_fingerprints(key) if f not in found)
    return found


def resolve_ostree(plan: Plan) -> OstreePin:
    o = plan.ostree
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        keys = key_files(o.gpg_keys, Path(scratch))
        info = resolve_ostree_ref(o.url, o.ref, keys)
        fingerprints = _fingerprints(keys)
    return OstreePin(url=o.url, ref=o.ref, commit=info.commit, timestamp=info.timestamp,
                     version=info.version, gpg_keys=fingerprints)


def _rewrap(err: BuildError) -> BuildError:
    return BuildError(err.message, stage="lock", step="flatpak")


def resolve_flatpak(plan: Plan) -> FlatpakPins:
    """The commit of every ref the build installs, per enabled remote, from their summaries."""
    if not plan.flatpak.enable:
        return FlatpakPins()
    from eib.flatpak.install import read_remotes
    from eib.flatpak.resolve import resolve

    try:
        remotes, summaries, arch = read_remotes(plan)
        if not remotes:
            return FlatpakPins(arch=arch)
        selection = resolve(remotes, summaries, arch)
    except BuildError as err:
        raise _rewrap(err) from err
    pins: dict[str, FlatpakRemotePin] = {}
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        for remote in remotes:
            refs = {s.ref: s.info.commit for s in selection.refs.values()
                    if s.info.remote == remote.name}
            fingerprint = ""
            if remote.gpg_key is not None:
                key = Path(scratch) / f"{remote.name}.gpg"
                key.write_bytes(remote.gpg_key)
                fingerprint = _fingerprints([key])[0]
            pins[remote.name] = FlatpakRemotePin(url=remote.url, gpg_key=fingerprint, refs=refs)
    return FlatpakPins(arch=arch, remotes=pins)


def check_flatpak_pins(plan: Plan, pins: FlatpakPins) -> None:
    """Fail clearly when a pinned Flatpak commit is gone from its remote."""
    from eib.flatpak.remotes import plan_remotes

    configs = {r.name: r for r in plan_remotes(plan)}
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        for name, remote in sorted(pins.remotes.items()):
            keys: list[Path] = []
            config = configs.get(name)
            if config is not None and config.gpg_key is not None:
                key = Path(scratch) / f"{name}.gpg"
                key.write_bytes(config.gpg_key)
                keys.append(key)
            check_commits_available(remote.url, remote.refs, keys, what="Flatpak")


def lock_plan(plan: Plan) -> LockEntry:
    """Resolve one compiled variant: its OS commit and its Flatpak commits."""
    build = plan.build.model_dump(include={"product", "branch", "arch", "platform",
                                           "personality"})
    log.info("locking %s", variant_key(build))
    return LockEntry(variant=build, ostree=resolve_ostree(plan), flatpak=resolve_flatpak(plan))


def check_entry(plan: Plan, entry: LockEntry) -> None:
    """Every pinned commit of one lock entry still exists on its server."""
    o = plan.ostree
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        keys = key_files(o.gpg_keys, Path(scratch))
        check_commit_available(entry.ostree.url, entry.ostree.ref, entry.ostree.commit, keys)
    check_flatpak_pins(plan, entry.flatpak)


__all__ = [
    "CommitInfo",
    "check_commit_available",
    "check_commits_available",
    "check_entry",
    "check_flatpak_pins",
    "check_plan_commit",
    "key_files",
    "key_fingerprints",
    "lock_plan",
    "resolve_flatpak",
    "resolve_ostree",
    "resolve_ostree_ref",
]
