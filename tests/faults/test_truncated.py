# ruff: noqa: F811  (test arguments named after the fixtures imported below)
"""A connection dropped halfway through a file never leaves a bad file in the cache.

The server promises each object's full `Content-Length`, sends half of it and
closes the connection.  Whether the build then fails (once, naming the step)
or gets the files on a retry, the cache holds only good content, and the next
build against a good server succeeds.  Everything is real: `eib run` of the
executor tests' tiny OS, ostree and flatpak pulling over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
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

from eib.demo.flatpak_repo import (
    Signer,
    build_app,
    build_locale_extension,
    build_runtime,
    update_repo,
)
from eib.flatpak.objects import verifiable, verify

from .servers import truncating_server


@dataclass(frozen=True)
class FlatpakRepo:
    url: str  # the served dir; the repo is `<url>/main`
    key_file: Path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", *args], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def flatpak_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlatpakRepo]:
    """A signed Flatpak repo of its own (a runtime, its locales, one app) on 127.0.0.1."""
    top = tmp_path_factory.mktemp("flatpak-truncated")
    home = top / "gnupg"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Truncation <trunc@eib.invalid>",
         "ed25519", "sign", "never")
    out = _gpg(home, "--with-colons", "--list-keys")
    signer = Signer(home, next(line.split(":")[9] for line in out.splitlines()
                               if line.startswith("fpr:")))
    www, work = top / "www", top / "work"
    repo = www / "main"
    www.mkdir()
    build_runtime(repo, work, signer=signer)
    build_locale_extension(repo, work, ("en",), signer=signer, size_per_locale=2000)
    build_app(repo, work, "org.eib.Hello", signer=signer, script='echo "Hello"\n')
    update_repo(repo, signer, title="Truncation test", default_branch="stable")
    key_file = top / "key.asc"
    key_file.write_text(_gpg(home, "--armor", "--export", signer.key_id))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield FlatpakRepo(f"http://127.0.0.1:{httpd.server_address[1]}", key_file)
    finally:
        httpd.shutdown()
        httpd.server_close()
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


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


def flatpak_recipe(build: Build, served: Served, signing: Signing, repo: FlatpakRepo,
                   url: str) -> Path:
    return write_recipe(build.recipe.parent, served, signing, flatpak={"remotes": {"main": {
        "url": f"{url}/main", "gpg_key": str(repo.key_file), "default_branch": "stable",
        "apps": ["org.eib.Hello"],
    }}})


def test_a_flatpak_download_cut_short_is_never_cached(
    build: Build, served: Served, signing: Signing, flatpak_repo: FlatpakRepo
) -> None:
    with truncating_server(flatpak_repo.url) as bad:
        flatpak_recipe(build, served, signing, flatpak_repo, bad.url)
        proc = run(build)
    assert bad.truncated, "the server never cut a file short"
    failed_cleanly(proc, "image/flatpak")
    log = (build.out / "build.txt").read_text()
    assert "the connection was closed after" in log
    assert (build.cache / "flatpak" / "objects").is_dir()
    assert bad_cached_objects(build.cache) == []

    flatpak_recipe(build, served, signing, flatpak_repo, flatpak_repo.url)
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
