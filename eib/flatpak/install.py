"""Install the plan's Flatpaks into the deployed OS's system installation.

Order matters: read every remote's signed summary, resolve the refs and run
the policies (nothing is written until they pass), then add the remotes
pointing at the local pull-through cache, install, fetch appstream, and
finally switch each remote to its deploy URL so the booted OS updates from
the right place. The `installed` manifest fragment records what went in.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from eib.errors import BuildError
from eib.flatpak.cache import FlatpakCache
from eib.flatpak.metadata import RemoteSummary, fetch_summary
from eib.flatpak.remotes import RemoteConfig, plan_remotes
from eib.flatpak.resolve import Selection, resolve
from eib.model.plan import Plan
from eib.tools.flatpak import flatpak, flatpak_arch, installation_env

log = logging.getLogger("eib.flatpak")

MANIFEST_FRAGMENT = "flatpak.json"


def _error(message: str) -> BuildError:
    return BuildError(message, stage="image", step="flatpak")


def system_installation(deployment: Path) -> Path:
    """`<sysroot>/ostree/deploy/<os>/var/lib/flatpak`: the OS's /var/lib/flatpak once booted."""
    return deployment.parent.parent / "var" / "lib" / "flatpak"


def read_remotes(plan: Plan) -> tuple[list[RemoteConfig], dict[str, RemoteSummary], str]:
    """The enabled remotes, their verified summaries, and the Flatpak arch."""
    arch = flatpak_arch(plan.build.arch, plan.flatpak.arch)
    remotes = plan_remotes(plan)
    summaries = {remote.name: fetch_summary(remote) for remote in remotes}
    return remotes, summaries, arch


def transactions(selection: Selection, remotes: list[RemoteConfig]) -> list[tuple[str, list[str]]]:
    """The `flatpak install REMOTE REFS…` calls, in an order where every dependency comes first.

    The command line installs from one remote per transaction (given several
    remotes it takes the first ref's remote for all), so a build is one
    transaction per remote. A remote whose runtimes other remotes' apps need
    goes first; should two remotes need each other, all runtimes are
    installed before any app.
    """
    explicit = [s for s in selection.refs.values() if s.requested or s.reason == "runtime"]
    names = [r.name for r in remotes if any(s.info.remote == r.name for s in explicit)]
    needs: dict[str, set[str]] = {name: set() for name in names}
    for selected in explicit:
        for parent in selected.needed_by:
            owner = selection.refs[parent].info.remote
            if owner != selected.info.remote:
                needs[owner].add(selected.info.remote)
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and needs[n] <= set(ordered)]
        if not ready:
            break
        ordered.append(ready[0])
    if len(ordered) == len(names):
        return [(n, [s.ref for s in explicit if s.info.remote == n]) for n in ordered]
    calls: list[tuple[str, list[str]]] = []
    for kind in ("runtime", "app"):
        for name in names:
            group = [s.ref for s in explicit if s.info.kind == kind and s.info.remote == name]
            if group:
                calls.append((name, group))
    return calls


def _existing_remotes(env: dict[str, str]) -> set[str]:
    proc = flatpak(["remotes", "--system", "--columns=name"], env=env)
    return {line.strip() for line in proc.stdout.splitlines() if line.strip()}


def _add_remote(
    remote: RemoteConfig, url: str, env: dict[str, str], tmp: Path, existing: set[str]
) -> None:
    """Add the remote, or bring an existing one (a retried build) to the recipe's settings."""
    exists = remote.name in existing
    args: list[str | Path] = ["remote-modify" if exists else "remote-add", "--system"]
    if remote.gpg_key is not None:
        key_file = tmp / f"{remote.name}.gpg"
        key_file.write_bytes(remote.gpg_key)
        args.append(f"--gpg-import={key_file}")
        if exists:
            args.append("--gpg-verify")
    else:
        args.append("--no-gpg-verify")
    if remote.title:
        args.append(f"--title={remote.title}")
    if remote.default_branch:
        args.append(f"--default-branch={remote.default_branch}")
    if remote.prio is not None:
        args.append(f"--prio={remote.prio}")
    if remote.noenumerate:
        args.append("--no-enumerate")
    elif exists:
        args.append("--enumerate")
    if remote.collection_id:
        args.append(f"--collection-id={remote.collection_id}")
    if exists:
        args.extend([f"--url={url}", remote.name])
    else:
        args.extend([remote.name, url])
    flatpak(args, env=env)


def _configure_languages(plan: Plan, env: dict[str, str]) -> None:
    locales = ";".join(plan.flatpak.locales)
    if not locales:
        return
    flatpak(["config", "--system", "--set", "languages", locales], env=env)
    if plan.flatpak.set_extra_languages:
        flatpak(["config", "--system", "--set", "extra-languages", locales], env=env)


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            total += st.st_size
    return total


def installed_manifest(
    selection: Selection, remotes: list[RemoteConfig], system_dir: Path, plan: Plan
) -> dict[str, Any]:
    """The manifest fragment: every installed ref with commit and sizes, and the remotes."""
    installed: dict[str, Any] = {}
    for selected in selection.refs.values():
        info = selected.info
        active = system_dir / info.ref / "active"
        if not active.is_symlink():
            raise _error(f"{info.ref} was not installed")
        # A locale subset deploys as `<commit>-<lang>-<lang>`.
        commit = os.readlink(active)[:64]
        installed[info.ref] = {
            "kind": info.kind,
            "name": info.name,
            "arch": info.arch,
            "branch": info.branch,
            "remote": info.remote,
            "commit": commit,
            "installed_size": _tree_size(active.resolve() / "files"),
            "download_size": info.download_size,
            "requested": selected.requested,
            "needed_by": sorted(selected.needed_by),
        }
        if selected.locale_subset and plan.flatpak.locales:
            installed[info.ref]["languages"] = list(plan.flatpak.locales)
    return {
        "flatpak": {
            "arch": selection.arch,
            "locales": list(plan.flatpak.locales),
            "remotes": {
                r.name: {"url": r.deploy_url, "pull_url": r.url, "title": r.title,
                         "collection_id": r.collection_id}
                for r in remotes
            },
            "installed": installed,
            "installed_size": sum(v["installed_size"] for v in installed.values()),
            "download_size": sum(v["download_size"] for v in installed.values()),
        }
    }


def _apply_pins(plan: Plan, selection: Selection, system_dir: Path, env: dict[str, str]) -> None:
    """Move each ref pinned by `eib lock` to its pinned commit (a no-op when it is already)."""
    for name, remote in sorted(plan.flatpak.remotes.items()):
        for ref, commit in sorted(remote.commits.items()):
            if ref not in selection.refs:
                log.info("pin of %s ignored: the build does not install it", ref)
                continue
            active = system_dir / ref / "active"
            if active.is_symlink() and os.readlink(active)[:64] == commit:
                continue
            log.info("pinning %s to %s", ref, commit)
            try:
                flatpak(["update", "--system", "--noninteractive", "-y", f"--commit={commit}",
                         ref], env=env)
            except BuildError as err:
                raise _error(
                    f"commit {commit} of {ref} is no longer on remote {name} ({err.message}); "
                    "run eib lock again"
                ) from None


def install_flatpaks(plan: Plan, deployment: Path, cache_dir: Path, manifest_dir: Path) -> None:
    """Install every configured app and runtime into the deployment's /var/lib/flatpak.

    Raises UserError for a recipe the remotes cannot satisfy (before writing
    anything) and BuildError(stage="image", step="flatpak") when a tool fails.
    """
    if not plan.flatpak.enable:
        return
    try:
        _install(plan, deployment, cache_dir, manifest_dir)
    except BuildError as err:
        if err.stage is None:
            raise _error(err.message) from err
        raise


def _install(plan: Plan, deployment: Path, cache_dir: Path, manifest_dir: Path) -> None:
    remotes, summaries, arch = read_remotes(plan)
    if not remotes:
        log.info("no enabled Flatpak remotes")
        return
    selection = resolve(remotes, summaries, arch)
    log.info("installing %d Flatpak refs: %s", len(selection.refs), " ".join(selection.refs))
    system_dir = system_installation(deployment)
    system_dir.mkdir(parents=True, exist_ok=True)
    upstreams = {r.name: r.url for r in remotes}
    with (
        tempfile.TemporaryDirectory(prefix="eib-flatpak-") as tmp_name,
        FlatpakCache(cache_dir / "flatpak", upstreams) as cache,
    ):
        tmp = Path(tmp_name)
        config_dir = tmp / "config"
        config_dir.mkdir()
        env = installation_env(system_dir, config_dir)
        env["LC_ALL"] = "C.UTF-8"
        existing = _existing_remotes(env)
        for remote in remotes:
            _add_remote(remote, cache.url_for(remote.name), env, tmp, existing)
        _configure_languages(plan, env)
        for remote_name, refs in transactions(selection, remotes):
            args = ["install", "--system", "--noninteractive", "-y", f"--arch={arch}"]
            proc = flatpak([*args, remote_name, *refs], env=env)
            for line in proc.stdout.splitlines():
                if line.strip():
                    log.info("flatpak: %s", line.strip())
        _apply_pins(plan, selection, system_dir, env)
        for remote in remotes:
            if summaries[remote.name].appstream_ref(arch):
                flatpak(
                    ["update", "--system", "--noninteractive", "--appstream", f"--arch={arch}",
                     remote.name],
                    env=env,
                )
        for remote in remotes:
            flatpak(["remote-modify", "--system", f"--url={remote.deploy_url}", remote.name],
                    env=env)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    fragment = installed_manifest(selection, remotes, system_dir, plan)
    (manifest_dir / MANIFEST_FRAGMENT).write_text(json.dumps(fragment, indent=2, sort_keys=True))
    log.info(
        "Flatpaks installed: %d refs, %d bytes downloaded at most, %d bytes installed",
        len(selection.refs), fragment["flatpak"]["download_size"],
        fragment["flatpak"]["installed_size"],
    )
