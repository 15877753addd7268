"""What the plan carries by content: hook files, keys, `.flatpakrepo` settings.

A plan must build where the recipe tree is not (another machine, a farm
worker, a saved `plan.json` months later), so everything the build reads
from the recipe's files is read here, once, at compile time: hooks are
embedded with their sha256, public keys as their armoured (or base64) text,
and a remote's `.flatpakrepo` file is folded into the remote.  The executor
then never opens a recipe file.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import os
from pathlib import Path

from eib.errors import UserError
from eib.model.plan import HookStep, NativeStep
from eib.model.recipe import FlatpakRemote
from eib.tools.keys import ARMOR_HEADER

REPO_FILE_GROUP = "Flatpak Repo"
URL_TIMEOUT_SECONDS = 60


def hook_step(group: str, name: str, path: Path, found_in: str) -> HookStep:
    """The hook at `path` as plan data: its text (or base64 bytes) and sha256."""
    data = path.read_bytes()
    try:
        content, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        content, encoding = base64.b64encode(data).decode("ascii"), "base64"
    return HookStep.model_validate(
        {
            "group": group,
            "name": name,
            "found_in": found_in,
            "sha256": hashlib.sha256(data).hexdigest(),
            "chroot": name.endswith(".chroot"),
            "executable": os.access(path, os.X_OK),
            "content": content,
            "encoding": encoding,
        }
    )


def native_step(group: str, name: str, native: NativeStep) -> HookStep:
    """The place of a legacy hook whose work eib does itself: no file to carry."""
    return HookStep.model_validate({
        "group": group, "name": name, "found_in": "native", "sha256": "", "content": "",
        "chroot": name.endswith(".chroot"), "executable": False, "native": native,
    })


def read_location(location: str, *, key: str) -> bytes:
    """The bytes of a local file or an https URL; plain http is refused (no integrity)."""
    if "://" in location:
        scheme = location.split("://", 1)[0].lower()
        if scheme not in ("https", "file"):
            raise UserError(
                f"'{location}' is fetched without TLS; keys and .flatpakrepo files must come "
                "from a local file or https",
                key=key,
            )
        import urllib.error  # only for URLs: a plain plan need not load http and ssl
        import urllib.request

        try:
            with urllib.request.urlopen(location, timeout=URL_TIMEOUT_SECONDS) as resp:
                data: bytes = resp.read()
                return data
        except (urllib.error.URLError, OSError) as err:
            raise UserError(f"cannot read '{location}': {err}", key=key) from None
    try:
        return Path(location).read_bytes()
    except IsADirectoryError:
        raise UserError(f"'{location}' is a directory, not a file", key=key) from None
    except OSError as err:
        raise UserError(f"cannot read '{location}': {err.strerror}", key=key) from None


def key_material(text: str, *, key: str) -> str:
    """A public key as plan content: inline armour as given, a file or URL read in.

    Armoured keys stay text (readable in `eib plan`); a binary key file is
    carried as base64, which is also how `.flatpakrepo` files give keys.
    """
    if text.lstrip().startswith(ARMOR_HEADER):
        return text
    data = read_location(text, key=key)
    try:
        decoded = data.decode("ascii")
    except UnicodeDecodeError:
        decoded = ""
    if decoded.lstrip().startswith(ARMOR_HEADER):
        return decoded
    if not data:
        raise UserError(f"the key file '{text}' is empty", key=key)
    return base64.b64encode(data).decode("ascii")


def _repo_file(location: str, key: str) -> dict[str, str]:
    return parse_repo_file(read_location(location, key=key).decode("utf-8", "replace"), key)


def parse_repo_file(text: str, key: str) -> dict[str, str]:
    """The keys of a `.flatpakrepo` file's `[Flatpak Repo]` group."""
    location = key
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=location)
    except configparser.Error as err:
        raise UserError(f"not a .flatpakrepo file: {err}", key=key) from None
    if not parser.has_section(REPO_FILE_GROUP):
        raise UserError(f"no [{REPO_FILE_GROUP}] group in '{location}'", key=key)
    return dict(parser.items(REPO_FILE_GROUP))


def fold_remote(name: str, remote: FlatpakRemote, *, keyless_ok: bool = False) -> FlatpakRemote:
    """The remote with its `.flatpakrepo` folded in (recipe values win) and its key read.

    `keyless_ok`: a hook of the recipe's checkout installs the apps and
    verifies them itself (see `check_trust`), so a remote without a key is not
    refused here.

    Paths are absolute by now (the compiler anchors them to the recipe file
    that wrote them); a local repo path becomes a `file://` URL.
    """
    if not remote.enable:
        # Never read, as the legacy builder skipped a disabled remote's section whole:
        # a disabled remote's repo file may be on a server this build cannot reach.
        return remote.model_copy(update={"repo_file": ""})
    key = f"flatpak.remotes.{name}"
    repo = _repo_file(remote.repo_file, f"{key}.repo_file") if remote.repo_file else {}
    url = remote.url or repo.get("Url", "")
    if not url:
        raise UserError("remote has no url (set url or repo_file)", key=f"{key}.url")
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    gpg_key = ""
    if not remote.gpg_verify:
        pass  # the recipe says so explicitly; the plan carries the warning
    elif remote.gpg_key:
        gpg_key = key_material(remote.gpg_key, key=f"{key}.gpg_key")
    elif repo.get("GPGKey"):
        try:
            base64.b64decode("".join(repo["GPGKey"].split()), validate=True)
        except ValueError:
            raise UserError("GPGKey is not base64", key=f"{key}.repo_file") from None
        gpg_key = "".join(repo["GPGKey"].split())
    elif not keyless_ok:
        raise UserError(
            "no gpg_key and no GPGKey in the repo file: the remote would be installed "
            "unverified",
            key=f"{key}.gpg_key",
            hint="give the remote's public key, or set gpg_verify: false for an unsigned "
            "test repo",
        )
    return remote.model_copy(
        update={
            "url": url.rstrip("/"),
            "deploy_url": (remote.deploy_url or url).rstrip("/"),
            "title": remote.title or repo.get("Title", ""),
            "default_branch": remote.default_branch or repo.get("DefaultBranch", ""),
            "gpg_key": gpg_key,
            "repo_file": "",
        }
    )
