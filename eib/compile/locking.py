"""A lock file applied to a compile, as data.

`eib plan/run --lock` build exactly the commits `eib lock` pinned.  The
variant's entry is found by the resolved variant of an unpinned compile, its
ref and URL are checked against what the recipe pulls now, and the pins (the
OSTree commit, every Flatpak ref's commit, and the commit's own time as the
build's time) go into the recipe model directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eib.errors import Origin, UserError
from eib.lock.file import VARIANT_KEY_ATTRS, find_entry, read_lock, variant_key
from eib.model.plan import Plan
from eib.model.recipe import Recipe


@dataclass(frozen=True)
class LockPins:
    """What a lock entry fixes in one variant's plan."""

    commit: str
    epoch: int
    flatpak_commits: dict[str, dict[str, str]] = field(default_factory=dict)

    def apply(self, recipe: Recipe) -> Recipe:
        remotes = {
            name: remote.model_copy(update={"commits": dict(sorted(
                self.flatpak_commits[name].items()))})
            if self.flatpak_commits.get(name) else remote
            for name, remote in recipe.flatpak.remotes.items()
        }
        return recipe.model_copy(
            update={
                "ostree": recipe.ostree.model_copy(update={"commit": self.commit}),
                "flatpak": recipe.flatpak.model_copy(update={"remotes": remotes}),
            }
        )


def pins_for(lock_path: Path, unpinned: Plan) -> LockPins:
    """The pins of `unpinned`'s variant, checked against the ref and URL it pulls now."""
    lock = read_lock(lock_path)
    build = unpinned.build.model_dump(include=set(VARIANT_KEY_ATTRS))
    entry = find_entry(lock, lock_path, build)
    url, ref = unpinned.ostree.url, unpinned.ostree.ref
    if (entry.ostree.url, entry.ostree.ref) != (url, ref):
        raise UserError(
            f"the lock pins ref {entry.ostree.ref} from {entry.ostree.url}, but the recipe "
            f"now pulls ref {ref} from {url}",
            origin=Origin(str(lock_path)),
            key=f"variants.{variant_key(build)}.ostree",
            hint="run `eib lock` again",
        )
    return LockPins(
        commit=entry.ostree.commit,
        epoch=entry.ostree.timestamp,
        flatpak_commits={n: dict(r.refs) for n, r in entry.flatpak.remotes.items() if r.refs},
    )
