"""Typed wrappers over the `flatpak` command.

Every call runs with an explicit installation and an empty config dir, so a
build never reads or writes the host's own installations or its static
`/etc/flatpak/remotes.d` remotes: the OS image gets exactly what the plan says.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from eib.errors import UserError
from eib.tools.run import run
from eib.variant import FLATPAK_ARCHES


def flatpak_arch(build_arch: str, override: str = "") -> str:
    """The Flatpak arch of a build: `flatpak.arch` if set, else mapped from the build arch."""
    if override:
        return override
    try:
        return FLATPAK_ARCHES[build_arch]
    except KeyError:
        raise UserError(
            f"no Flatpak arch for build arch '{build_arch}'",
            key="flatpak.arch",
            hint="set flatpak.arch explicitly",
        ) from None


def installation_env(system_dir: Path, config_dir: Path) -> dict[str, str]:
    """Environment that makes `flatpak --system` mean the installation at `system_dir`."""
    env = dict(os.environ)
    env["FLATPAK_SYSTEM_DIR"] = str(system_dir)
    env["FLATPAK_CONFIG_DIR"] = str(config_dir)
    # Keep the host's user installation out of dependency resolution.
    env["FLATPAK_USER_DIR"] = str(config_dir / "user")
    env.pop("FLATPAK_SYSTEM_CACHE_DIR", None)
    return env


def flatpak(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `flatpak ARGS` through the logged runner."""
    return run(["flatpak", *args], env=env, check=check, timeout=timeout)


def build_finish(
    build_dir: Path,
    *,
    command: str | None = None,
    extra_args: Sequence[str] = (),
) -> None:
    args: list[str | Path] = ["build-finish"]
    if command:
        args.append(f"--command={command}")
    args.extend(extra_args)
    args.append(build_dir)
    flatpak(args)


def build_export(
    repo: Path,
    build_dir: Path,
    branch: str,
    *,
    runtime: bool = False,
    files: str | None = None,
    arch: str | None = None,
    gpg_key: str | None = None,
    gpg_homedir: Path | None = None,
    timestamp: str | None = None,
    subject: str | None = None,
    collection_id: str | None = None,
) -> None:
    """Commit a build dir into an archive repo (created when missing), signed if a key is given."""
    args: list[str | Path] = ["build-export", "--no-update-summary", "--disable-sandbox"]
    if runtime:
        args.append("--runtime")
    if files:
        args.append(f"--files={files}")
    if arch:
        args.append(f"--arch={arch}")
    if timestamp:
        args.append(f"--timestamp={timestamp}")
    if subject:
        args.append(f"--subject={subject}")
    if collection_id:
        args.append(f"--collection-id={collection_id}")
    args.extend(_signing(gpg_key, gpg_homedir))
    args.extend([repo, build_dir, branch])
    flatpak(args)


def build_update_repo(
    repo: Path,
    *,
    title: str | None = None,
    default_branch: str | None = None,
    gpg_key: str | None = None,
    gpg_homedir: Path | None = None,
    collection_id: str | None = None,
) -> None:
    """Regenerate the summary (with sizes and metadata) and the appstream branches."""
    args: list[str | Path] = ["build-update-repo"]
    if title:
        args.append(f"--title={title}")
    if default_branch:
        args.append(f"--default-branch={default_branch}")
    if collection_id:
        args.append(f"--collection-id={collection_id}")
    args.extend(_signing(gpg_key, gpg_homedir))
    args.append(repo)
    flatpak(args)


def _signing(gpg_key: str | None, gpg_homedir: Path | None) -> list[str]:
    if not gpg_key:
        return []
    args = [f"--gpg-sign={gpg_key}"]
    if gpg_homedir is not None:
        args.append(f"--gpg-homedir={gpg_homedir}")
    return args
