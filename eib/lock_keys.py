"""A locked build trusts the keys its lock recorded, and no others.

`eib lock` writes the fingerprints of the keys each remote was verified
with (`ostree.gpg_keys`, each Flatpak remote's `gpg_key`). When the recipe's
keys have changed since, for instance because a `.flatpakrepo` fetched from
the publisher now carries another key, or a key file was replaced, the
pinned commits would be verified against keys nobody reviewed. So `eib run
--lock` compares before anything is pulled or built, and stops with both
fingerprint lists (exit 2).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from eib.errors import Origin, UserError
from eib.lockfile import VARIANT_KEY_ATTRS, LockEntry, find_entry, read_lock, variant_key
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
    from eib.lock_resolve import key_fingerprints
    from eib.tools.keys import key_files

    ostree: list[str] = []
    remotes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        if plan.ostree.gpg_verify:
            for path in key_files(plan.ostree.gpg_keys, Path(scratch)):
                ostree.extend(f for f in key_fingerprints(path) if f not in ostree)
        if plan.flatpak.enable:
            from eib.execute.flatpak_remotes import plan_remotes

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


def check_locked_keys(lock: Path, plan: Plan) -> None:
    """`check_entry_keys` for the lock entry of the plan's variant."""
    build = plan.build.model_dump(include=set(VARIANT_KEY_ATTRS))
    check_entry_keys(lock, find_entry(read_lock(lock), lock, build), plan)
