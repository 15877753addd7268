"""Fixtures for the Flatpak tests: a throwaway key, two real signed repos, an HTTP server.

The repos are built once per session with the same builders the demo uses and
served from 127.0.0.1 by a threaded `http.server` that records every request
path, so a test can tell exactly what a build downloaded.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from eib.demo.flatpak_repo import (
    ExtraData,
    Signer,
    build_app,
    build_locale_extension,
    build_runtime,
    update_repo,
)

LOCALES = ("en", "es", "fr", "pt")
EIB = [sys.executable, "-m", "eib.cli"]

# Incompressible payloads, so download sizes are predictable and --trim has work.
BIG, MEDIUM, GUIDE, LEGACY = 400_000, 200_000, 50_000, 30_000


@dataclass
class Server:
    """The fixture HTTP server: its base URL and every path it was asked for."""

    url: str
    requests: list[str] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> list[str]:
        return self.requests[mark:]


@dataclass(frozen=True)
class Repos:
    root: Path
    main: Path
    second: Path
    key_file: Path
    signer: Signer


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args],
        check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    """A passphrase-less ed25519 key in its own GNUPGHOME (never the user's)."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Flatpak Test <flatpak-test@eib.invalid>",
         "ed25519", "sign", "never")
    out = _gpg(home, "--with-colons", "--list-keys")
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    yield Signer(home, fpr)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory, signer: Signer, server: Server) -> Repos:
    root = server_root(tmp_path_factory)
    work = tmp_path_factory.mktemp("flatpak-build")
    main, second = root / "main", root / "second"
    # main: the demo-like platform with locales, a second platform, and apps of known sizes.
    build_runtime(main, work, signer=signer)
    build_locale_extension(main, work, LOCALES, signer=signer, size_per_locale=2000)
    build_runtime(main, work, name="org.eib.OtherPlatform", signer=signer,
                  locale_extension=False)
    build_app(main, work, "org.eib.Hello", signer=signer, script='echo "Hello from a test"\n')
    build_app(main, work, "org.eib.Hello", branch="beta", signer=signer,
              script='echo "Hello beta"\n')
    build_app(main, work, "org.eib.Clock", signer=signer)
    build_app(main, work, "org.eib.Big", signer=signer, size=BIG)
    build_app(main, work, "org.eib.Medium", signer=signer, size=MEDIUM)
    build_app(main, work, "org.eib.Guide.pt", signer=signer, size=GUIDE)
    build_app(main, work, "org.eib.Legacy", runtime="org.eib.OtherPlatform//1", signer=signer,
              size=LEGACY)
    blob = b"extra data from outside the repo\n" * 100
    (root / "extra").mkdir(parents=True, exist_ok=True)
    (root / "extra" / "blob.bin").write_bytes(blob)
    build_app(
        main, work, "org.eib.Extra", signer=signer,
        extra_data=ExtraData("blob.bin", f"{server.url}/extra/blob.bin", blob),
    )
    update_repo(main, signer, title="Main test apps", default_branch="stable")
    # second: an app whose runtime lives on `main`, published with a .flatpakrepo file.
    build_app(second, work, "org.eib.Notes", signer=signer)
    update_repo(second, signer, title="Second test apps", default_branch="stable")
    key_file = root / "key.asc"
    key_file.write_text(_gpg(signer.homedir, "--armor", "--export", signer.key_id))
    return Repos(root, main, second, key_file, signer)


def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "served"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = server_root(tmp_path_factory)
    root.mkdir(parents=True, exist_ok=True)
    record: list[str] = []
    lock = threading.Lock()

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            with lock:
                record.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    srv = Server(f"http://127.0.0.1:{httpd.server_address[1]}", record)
    yield srv
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def recipe(tmp_path: Path, repos: Repos, server: Server) -> Callable[[str], Path]:
    """recipe(flatpak_yaml) → a recipe file whose flatpak section is the given YAML;
    `{url}` is the server URL and `{key}` the public key file."""

    def write(flatpak_yaml: str, ostree_extra: str = "") -> Path:
        body = textwrap.dedent(flatpak_yaml).strip("\n")
        body = body.replace("{url}", server.url).replace("{key}", str(repos.key_file))
        text = (
            "eib: 1\n"
            "variant: {product: fptest, arch: amd64, personality: pt}\n"
            # Never pulled here: the OS side is not what these tests verify.
            "ostree: {url: 'http://127.0.0.1:9/ostree', gpg_verify: false, "
            f"ref: os/fptest{ostree_extra}}}\n"
            "flatpak:\n" + textwrap.indent(body, "  ") + "\n"
        )
        path = tmp_path / "recipe.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def deployment(tmp_path: Path) -> Callable[[str], Path]:
    """deployment(name) → a fresh fake `sysroot/ostree/deploy/eos/deploy/abc.0`."""

    def make(name: str = "sysroot") -> Path:
        dep = tmp_path / name / "ostree" / "deploy" / "eos" / "deploy" / "abc.0"
        dep.mkdir(parents=True)
        (tmp_path / name / "ostree" / "deploy" / "eos" / "var").mkdir()
        return dep

    return make


@pytest.fixture
def flatpak_cmd(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """flatpak_cmd(system_dir, *args) runs `flatpak --system ARGS` on the image's installation
    (and on nothing else: empty config dir, no user installation)."""
    config = tmp_path / "flatpak-config"
    config.mkdir(exist_ok=True)

    def run(system_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FLATPAK_SYSTEM_DIR": str(system_dir),
               "FLATPAK_CONFIG_DIR": str(config), "FLATPAK_USER_DIR": str(config / "user")}
        return subprocess.run(["flatpak", *args], env=env, capture_output=True, text=True,
                              check=False)

    return run


@pytest.fixture
def eib_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """eib_cli(*args) runs the real `eib` command line."""

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True,
                              check=False)

    return run
