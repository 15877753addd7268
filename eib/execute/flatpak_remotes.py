"""The Flatpak remotes of a plan, with their `.flatpakrepo` files folded in.

A remote may name a `.flatpakrepo` file (path or URL) for its URL, title,
default branch and key; values written in the recipe win over the file's.
The result is one plain record per enabled remote that the install and the
`eib apps` report both use.
"""

from __future__ import annotations

import base64
import configparser
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from eib.errors import UserError
from eib.model.plan import Plan
from eib.model.recipe import FlatpakRemote
from eib.tools.keys import insecure_location

REPO_FILE_GROUP = "Flatpak Repo"


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


def read_location(location: str, base: Path) -> bytes:
    """The bytes of a local path (relative to `base`) or an https/file URL.

    These are keys and `.flatpakrepo` files, the roots of trust: never plain http.
    """
    if insecure_location(location):
        raise UserError(f"'{location}' is fetched without TLS; keys and .flatpakrepo files "
                        "must come from a local file or https")
    if "://" in location:
        try:
            with urllib.request.urlopen(location, timeout=60) as resp:
                data: bytes = resp.read()
                return data
        except (urllib.error.URLError, OSError) as err:
            raise UserError(f"cannot read '{location}': {err}") from err
    path = Path(location)
    if not path.is_absolute():
        path = base / path
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read '{path}': {err.strerror}") from err


def parse_repo_file(text: str, where: str) -> dict[str, str]:
    """The keys of a `.flatpakrepo` file's `[Flatpak Repo]` group."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=where)
    except configparser.Error as err:
        raise UserError(f"not a .flatpakrepo file: {err}", key=where) from err
    if not parser.has_section(REPO_FILE_GROUP):
        raise UserError(f"no [{REPO_FILE_GROUP}] group in '{where}'", key=where)
    return dict(parser.items(REPO_FILE_GROUP))


def resolve_remote(name: str, remote: FlatpakRemote, base: Path, p2p: bool) -> RemoteConfig:
    """Fold the repo file into the recipe's values (recipe wins) and load the key."""
    key = f"flatpak.remotes.{name}"
    repo: dict[str, str] = {}
    if remote.repo_file:
        text = read_location(remote.repo_file, base).decode("utf-8", "replace")
        repo = parse_repo_file(text, f"{key}.repo_file")
    url = remote.url or repo.get("Url", "")
    if not url:
        raise UserError("remote has no url (set url or repo_file)", key=f"{key}.url")
    if "://" not in url:
        # A local repo: a path relative to the recipe.
        url = (base / url).resolve().as_uri()
    gpg_key: bytes | None = None
    if remote.gpg_key:
        gpg_key = read_location(remote.gpg_key, base)
    elif repo.get("GPGKey"):
        try:
            gpg_key = base64.b64decode("".join(repo["GPGKey"].split()), validate=True)
        except ValueError as err:
            raise UserError("GPGKey is not base64", key=f"{key}.repo_file") from err
    if not remote.gpg_verify:
        gpg_key = None  # the recipe says so explicitly; the plan carries the warning
    elif gpg_key is None:
        raise UserError(
            "no gpg_key and no GPGKey in the repo file: the remote would be installed "
            "unverified",
            key=f"{key}.gpg_key",
            hint="give the remote's public key, or set gpg_verify: false for an unsigned "
            "test repo",
        )
    return RemoteConfig(
        name=name,
        url=url.rstrip("/"),
        deploy_url=(remote.deploy_url or url).rstrip("/"),
        title=remote.title or repo.get("Title", ""),
        default_branch=remote.default_branch or repo.get("DefaultBranch", ""),
        prio=remote.prio,
        noenumerate=remote.noenumerate,
        gpg_key=gpg_key,
        collection_id=remote.collection_id if p2p else "",
        apps=tuple(remote.apps),
        runtimes=tuple(remote.runtimes),
        exclude=tuple(remote.exclude),
        allow_extra_data=tuple(remote.allow_extra_data),
    )


def plan_remotes(plan: Plan) -> list[RemoteConfig]:
    """The enabled remotes of a plan, in recipe order."""
    base = Path(plan.recipe_dir)
    return [
        resolve_remote(name, remote, base, plan.ostree.p2p)
        for name, remote in plan.flatpak.remotes.items()
        if remote.enable
    ]
