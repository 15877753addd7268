# ruff: noqa: F811  (test arguments named after the fixtures imported below)
"""A connection dropped halfway through a file never leaves a bad file in the cache.

The server promises each object's full `Content-Length`, sends half of it and
closes the connection.  Whether the build then fails (once, naming the step)
or gets the files on a retry, the cache holds only good content, and the next
build against a good server succeeds.  Everything is real: `eib run` of the
executor tests' tiny OS, ostree and flatpak pulling over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from execute.conftest import (  # noqa: F401  (fixtures)
    Build,
    Served,
    Signing,
    build,
    eib_env,
    served,
    signing,
    write_recipe,
)
from flatpak.conftest import Repos, Server, repos, server, signer  # noqa: F401  (fixtures)

from eib.flatpak.objects import verifiable, verify

from .servers import truncating_server


def run(build: Build, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(build.argv("--progress", "plain", *args), capture_output=True,
                          text=True, env=eib_env(), timeout=300, check=False)


def failed_cleanly(proc: subprocess.CompletedProcess[str], where: str) -> None:
    """Exit 1 and one line naming the step, or a success that retried its way through."""
    if proc.returncode == 0:
        return
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"eib: build failed: {where}: "), lines[0]


def bad_cached_objects(cache: Path) -> list[str]:
    """Files of the Flatpak cache's `objects/` whose content does not match their name."""
    root = cache / "flatpak"
    return [rel for rel in (p.relative_to(root).as_posix()
                            for p in sorted((root / "objects").rglob("*")) if p.is_file())
            if not (verifiable(rel) and verify(rel, root / rel))]


def flatpak_recipe(build: Build, served: Served, signing: Signing, repos: Repos,
                   url: str) -> Path:
    return write_recipe(build.recipe.parent, served, signing, flatpak={"remotes": {"main": {
        "url": f"{url}/main", "gpg_key": str(repos.key_file), "default_branch": "stable",
        "apps": ["org.eib.Hello"],
    }}})


def test_a_flatpak_download_cut_short_is_never_cached(
    build: Build, served: Served, signing: Signing, repos: Repos, server: Server
) -> None:
    with truncating_server(server.url) as bad:
        flatpak_recipe(build, served, signing, repos, bad.url)
        proc = run(build)
    assert bad.truncated, "the server never cut a file short"
    failed_cleanly(proc, "image/flatpak")
    log = (build.out / "build.txt").read_text()
    assert "the connection was closed after" in log
    assert (build.cache / "flatpak" / "objects").is_dir()
    assert bad_cached_objects(build.cache) == []

    flatpak_recipe(build, served, signing, repos, server.url)
    for args in ((), ("--no-cache",)):
        proc = run(build, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert bad_cached_objects(build.cache) == []
        app = build.deployment().parents[1] / "var/lib/flatpak/app/org.eib.Hello"
        assert (app / "current").exists(), args


def test_an_os_pull_cut_short_leaves_a_sound_cache_repo(
    build: Build, served: Served, signing: Signing
) -> None:
    with truncating_server(served.url) as bad:
        write_recipe(build.recipe.parent, served, signing, repo="good",
                     ostree={"url": f"{bad.url}/good", "pull_retries": 1})
        proc = run(build)
    assert bad.truncated, "the server never cut a file short"
    failed_cleanly(proc, "ostree/pull")
    repo = build.cache / "ostree" / "repo"
    if repo.is_dir():
        fsck = subprocess.run(["ostree", "fsck", f"--repo={repo}"], capture_output=True,
                              text=True, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    write_recipe(build.recipe.parent, served, signing)
    proc = run(build, "--no-cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    fsck = subprocess.run(["ostree", "fsck", f"--repo={repo}"], capture_output=True, text=True,
                          check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    marker = build.deployment() / "usr/lib/eibtest-marker"
    assert marker.read_text() == "good 2.0\n"
