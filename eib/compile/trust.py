"""What a recipe trusts, checked when it is compiled (`eib validate`, `plan`, `run`).

An OSTree remote without keys would be checked against whatever keyrings
the build host happens to have, and a Flatpak remote without a key would be
installed, and shipped, with `--no-gpg-verify`. Both are errors unless the
recipe turns verification off explicitly (`gpg_verify: false`, for unsigned
test repos), which the plan and the build log then show as a warning. Keys
and `.flatpakrepo` files are trust roots: they come from local files or
https, never plain http where anyone on the path may swap them.
"""

from __future__ import annotations

from eib.errors import UserError
from eib.load.merge import Tree
from eib.model.recipe import Recipe
from eib.tools.keys import insecure_location


def _refuse_http(location: str, key: str, tree: Tree, path: tuple[str, ...]) -> None:
    if insecure_location(location):
        raise UserError(
            f"'{location}' is fetched without TLS; keys and .flatpakrepo files "
            "must come from a local file or https",
            origin=tree.origin(path),
            key=key,
        )


def check_trust(recipe: Recipe, tree: Tree, *, flatpak_by_hook: bool = False) -> list[str]:
    """The plan's trust warnings; a UserError when a remote would be trusted blindly.

    `flatpak_by_hook`: the recipe's checkout installs the apps with its own
    `50-flatpak.chroot` (a legacy tree), which verifies them against the
    keyring of the OS being built; eib installs nothing, so a remote without
    a key here is the hook's business, not an error.
    """
    warnings: list[str] = []
    o = recipe.ostree
    for index, location in enumerate(o.gpg_keys):
        _refuse_http(location, f"ostree.gpg_keys[{index}]", tree, ("ostree", "gpg_keys"))
    if o.url and not o.gpg_verify:
        warnings.append(f"ostree.gpg_verify is false: the OS from {o.url} is not verified")
    elif o.url and not o.gpg_keys:
        raise UserError(
            "no gpg_keys: the OS commit would be checked against the build host's keyrings",
            origin=tree.origin(("ostree", "url")),
            key="ostree.gpg_keys",
            hint="list the publisher's public key, or set ostree.gpg_verify: false "
            "for an unsigned test repo",
        )
    if not recipe.flatpak.enable:
        return warnings
    for name, remote in recipe.flatpak.remotes.items():
        key = f"flatpak.remotes.{name}"
        base = ("flatpak", "remotes", name)
        _refuse_http(remote.gpg_key, f"{key}.gpg_key", tree, (*base, "gpg_key"))
        _refuse_http(remote.repo_file, f"{key}.repo_file", tree, (*base, "repo_file"))
        if not remote.enable:
            continue
        if not remote.gpg_verify:
            warnings.append(
                f"{key}.gpg_verify is false: its apps are installed and shipped unverified"
            )
        elif not remote.gpg_key and not remote.repo_file and flatpak_by_hook:
            warnings.append(f"{key} has no key: the checkout's own 50-flatpak.chroot "
                            "installs its apps and verifies them")
        elif not remote.gpg_key and not remote.repo_file:
            raise UserError(
                "no gpg_key: the remote would be installed and shipped with --no-gpg-verify",
                origin=tree.origin(base),
                key=f"{key}.gpg_key",
                hint="give the remote's public key (or a .flatpakrepo with GPGKey), or set "
                "gpg_verify: false for an unsigned test repo",
            )
    return warnings
