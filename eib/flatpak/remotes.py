"""The Flatpak remotes of a plan as plain records.

The compiler already folded each remote's `.flatpakrepo` file into it and
carried its key by content (`eib.compile.carried`), so this reads nothing:
it is the one record per enabled remote that the install, `eib lock` and
`eib apps` all use.
"""

from __future__ import annotations

from dataclasses import dataclass

from eib.model.plan import Plan
from eib.model.recipe import FlatpakRemote
from eib.tools.keys import key_bytes


@dataclass(frozen=True)
class RemoteConfig:
    """One enabled remote, fully resolved: what to add and what to install from it."""

    name: str
    url: str
    deploy_url: str
    title: str
    default_branch: str
    prio: int | None
    noenumerate: bool
    gpg_key: bytes | None
    collection_id: str
    apps: tuple[str, ...]
    runtimes: tuple[str, ...]
    exclude: tuple[str, ...]
    allow_extra_data: tuple[str, ...]

    @property
    def key(self) -> str:
        """The recipe key of this remote, for error messages."""
        return f"flatpak.remotes.{self.name}"


def remote_config(name: str, remote: FlatpakRemote, p2p: bool) -> RemoteConfig:
    """The record of one remote as the compiler folded it (repo file and key read in)."""
    return RemoteConfig(
        name=name,
        url=remote.url,
        deploy_url=remote.deploy_url or remote.url,
        title=remote.title,
        default_branch=remote.default_branch,
        prio=remote.prio,
        noenumerate=remote.noenumerate,
        gpg_key=key_bytes(remote.gpg_key) if remote.gpg_key else None,
        collection_id=remote.collection_id if p2p else "",
        apps=tuple(remote.apps),
        runtimes=tuple(remote.runtimes),
        exclude=tuple(remote.exclude),
        allow_extra_data=tuple(remote.allow_extra_data),
    )


def plan_remotes(plan: Plan) -> list[RemoteConfig]:
    """The enabled remotes of a plan, in recipe order."""
    return [
        remote_config(name, remote, plan.ostree.p2p)
        for name, remote in plan.flatpak.remotes.items()
        if remote.enable
    ]
