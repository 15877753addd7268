"""A locked build trusts the keys its lock recorded, and no others.

`eib lock` writes the fingerprints of the keys each remote was verified
with (`ostree.gpg_keys`, each Flatpak remote's `gpg_key`). When the recipe's
keys have changed since, for instance because a `.flatpakrepo` fetched from
the publisher now carries another key, or a key file was replaced, the
pinned commits would be verified against keys nobody reviewed. So `eib run
--lock` compares before anything is pulled or built, and stops with both
fingerprint lists (exit 2). With the keys unchanged, the pinned OS commit
and each Flatpak remote's summary are then checked to be signed by them: an
upstream re-signed with another key stops the build the same way, naming
the key id it was signed with, instead of failing halfway through.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from eib.errors import EibError, Origin, UserError
from eib.lock.file import VARIANT_KEY_ATTRS, LockEntry, find_entry, read_lock, variant_key
from eib.model.plan import Plan


def _show(fingerprints: list[str]) -> str:
    return ", ".join(fingerprints) if fingerprints else "none"


def _mismatch(lock: Path, key: str, what: str, expected: list[str], found: list[str]) -> UserError:
    return UserError(
        f"{what} is now verified with other keys than the lock trusts: "
        f"expected {_show(expected)}, found {_show(found)}",
        origin=Origin(str(lock)),
        key=key,
        hint="review the new key; if it is right, run `eib lock` again",
    )


def plan_fingerprints(plan: Plan) -> tuple[list[str], dict[str, str]]:
    """(OSTree key fingerprints, Flatpak remote → key fingerprint) the plan verifies with."""
    from eib.lock.resolve import key_fingerprints
    from eib.tools.keys import key_files

    ostree: list[str] = []
    remotes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        # As `eib lock` records them (lock_resolve.resolve_ostree): every listed key.
        for path in key_files(plan.ostree.gpg_keys, Path(scratch)):
            ostree.extend(f for f in key_fingerprints(path) if f not in ostree)
        if plan.flatpak.enable:
            from eib.flatpak.remotes import plan_remotes

            for remote in plan_remotes(plan):
                fingerprint = ""
                if remote.gpg_key is not None:
                    key = Path(scratch) / f"{remote.name}.gpg"
                    key.write_bytes(remote.gpg_key)
                    fingerprint = key_fingerprints(key)[0]
                remotes[remote.name] = fingerprint
    return ostree, remotes


def check_entry_keys(lock: Path, entry: LockEntry, plan: Plan) -> None:
    """UserError naming expected and found fingerprints when the plan's keys moved."""
    ostree, remotes = plan_fingerprints(plan)
    base = f"variants.{variant_key(entry.variant)}"
    if sorted(ostree) != sorted(entry.ostree.gpg_keys):
        raise _mismatch(lock, f"{base}.ostree.gpg_keys", f"the OS from {plan.ostree.url}",
                        sorted(entry.ostree.gpg_keys), sorted(ostree))
    for name, pin in sorted(entry.flatpak.remotes.items()):
        found = remotes.get(name, "")
        if found != pin.gpg_key:
            raise _mismatch(lock, f"{base}.flatpak.remotes.{name}.gpg_key",
                            f"Flatpak remote {name}", [pin.gpg_key] if pin.gpg_key else [],
                            [found] if found else [])


def _signers(repo: Path, commit: str) -> list[str]:
    """The key ids `ostree show` reports for the commit's signatures."""
    from eib.tools.ostree import ostree

    proc = ostree(["show", f"--repo={repo}", "--gpg-verify-remote=lock", commit], check=False)
    text = (proc.stdout or "") + (proc.stderr or "")
    return sorted(set(re.findall(r"key ID ([0-9A-Fa-f]{8,40})", text)))


def check_commit_signer(lock: Path, entry: LockEntry, plan: Plan) -> None:
    """UserError when the pinned OS commit is no longer signed by the locked keys.

    Only the signature is judged here: an unreachable server or a vanished
    commit is left to the ostree stage, which says so in its own words.
    """
    from eib.tools.keys import key_files
    from eib.tools.ostree import GPG_FAILURES, ostree

    o = plan.ostree
    if not o.gpg_verify or not o.commit or not entry.ostree.gpg_keys:
        return
    top = Path(tempfile.mkdtemp(prefix="eib-lock-keys-"))
    try:
        repo = top / "repo"
        ostree(["init", f"--repo={repo}", "--mode=bare-user"])
        ostree(["remote", "add", f"--repo={repo}", "--set=gpg-verify=true", "lock", o.url])
        for key in key_files(o.gpg_keys, top):
            ostree(["remote", "gpg-import", f"--repo={repo}", f"--keyring={key}", "lock"])
        proc = ostree(["pull", f"--repo={repo}", "--commit-metadata-only", "lock",
                       f"{o.ref}@{o.commit}"], check=False)
        output = ((proc.stdout or "") + (proc.stderr or "")).lower()
        if proc.returncode == 0 or not any(p.lower() in output for p in GPG_FAILURES):
            return
        # Fetched again without verification, only to read who signed it.
        ostree(["remote", "add", f"--repo={repo}", "--set=gpg-verify=false", "raw", o.url])
        ostree(["pull", f"--repo={repo}", "--commit-metadata-only", "raw",
                f"{o.ref}@{o.commit}"], check=False)
        found = _signers(repo, o.commit)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    raise UserError(
        f"pinned commit {o.commit[:12]} of {o.ref} on {o.url} is no longer signed by the "
        f"keys the lock trusts: expected {_show(sorted(entry.ostree.gpg_keys))}, "
        f"found signatures by key id {_show(found)}",
        origin=Origin(str(lock)),
        key=f"variants.{variant_key(entry.variant)}.ostree.gpg_keys",
        hint="review the new key; if it is right, put it in the recipe and run `eib lock` again",
    )


def check_summary_signers(lock: Path, entry: LockEntry, plan: Plan) -> None:
    """UserError when a locked Flatpak remote's summary is not signed by its locked key."""
    if not plan.flatpak.enable:
        return
    from eib.flatpak.metadata import fetch_summary
    from eib.flatpak.remotes import plan_remotes

    for remote in plan_remotes(plan):
        pin = entry.flatpak.remotes.get(remote.name)
        if pin is None or not pin.gpg_key or remote.gpg_key is None:
            continue
        try:
            fetch_summary(remote)
        except EibError as err:
            if "signature" not in str(err).lower() and "gpg" not in str(err).lower():
                continue  # unreachable and the like: the build reports it
            raise UserError(
                f"the summary of Flatpak remote {remote.name} is no longer signed by the key "
                f"the lock trusts: expected {pin.gpg_key} ({err})",
                origin=Origin(str(lock)),
                key=f"variants.{variant_key(entry.variant)}.flatpak.remotes.{remote.name}"
                ".gpg_key",
                hint="review the new key; if it is right, put it in the recipe and run "
                "`eib lock` again",
            ) from None


def check_locked_keys(lock: Path, plan: Plan) -> None:
    """The plan's keys are the lock's, and they still sign what the lock pins."""
    build = plan.build.model_dump(include=set(VARIANT_KEY_ATTRS))
    entry = find_entry(read_lock(lock), lock, build)
    check_entry_keys(lock, entry, plan)
    check_commit_signer(lock, entry, plan)
    check_summary_signers(lock, entry, plan)
