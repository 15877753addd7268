"""Fixtures for the reproducibility tests: a signed OSTree repo and a signed
Flatpak repo served over HTTP on 127.0.0.1, and a recipe that uses both.

The repos are made with eib's own demo builders (`eib.demo.gpgkey`,
`eib.demo.flatpak_repo`) and served with `eib.demo.serve`; tests that
change a repo (move a ref, prune a commit) work on their own copy below the
served root, so the session's repos stay as they were.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from eib.demo.flatpak_repo import Signer, build_app, build_runtime, update_repo
from eib.demo.gpgkey import ensure_key, export_public_key, stop_agent
from eib.demo.serve import ServedURL, serve

EIB = [sys.executable, "-m", "eib.cli"]
REF = "os/repro/amd64/master"
APP = "app/org.eib.Hello/x86_64/stable"
RUNTIME = "runtime/org.eib.Platform/x86_64/1"
FIRST_TIME = 1704067200  # 2024-01-01T00:00:00Z
SECOND_TIME = 1706745600  # 2024-02-01T00:00:00Z
KERNEL_VERSION = "6.1.0-repro"


@dataclass(frozen=True)
class Served:
    url: ServedURL
    root: Path
    signer: Signer
    key_file: Path
    fingerprint: str

    def ostree_repo(self, name: str = "ostree") -> Path:
        return self.root / name

    def rev_parse(self, ref: str, name: str = "ostree") -> str:
        return subprocess.run(["ostree", "rev-parse", f"--repo={self.root / name}", ref],
                              check=True, capture_output=True, text=True).stdout.strip()


def commit_os(repo: Path, signer: Signer, marker: str, timestamp: int) -> str:
    """Commit a tiny tree on REF, signed, with a fixed time; update the signed summary."""
    tree = repo.parent / f".tree-{marker}"
    modules = tree / "usr" / "lib" / "modules" / KERNEL_VERSION
    modules.mkdir(parents=True, exist_ok=True)
    (modules / "vmlinuz").write_bytes(b"not a real kernel\n")
    (modules / "initramfs.img").write_bytes(b"not a real initramfs\n")
    (tree / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", tree / "usr" / "bin" / "busybox")
    (tree / "usr" / "bin" / "sh").symlink_to("busybox")
    (tree / "bin").symlink_to("usr/bin")
    (tree / "usr" / "etc").mkdir(exist_ok=True)
    (tree / "usr" / "etc" / "os-release").write_text(f"ID=repro\nVERSION_ID={marker}\n")
    (tree / "usr" / "lib" / "os-release").write_text(f"ID=repro\nVERSION_ID={marker}\n")
    gpg = [f"--gpg-sign={signer.key_id}", f"--gpg-homedir={signer.homedir}"]
    try:
        commit = subprocess.run(
            ["ostree", "commit", f"--repo={repo}", f"--branch={REF}", f"--subject={marker}",
             f"--add-metadata-string=version={marker}", f"--timestamp=@{timestamp}",
             "--owner-uid=0", "--owner-gid=0", "--no-xattrs", *gpg, str(tree)],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        subprocess.run(["ostree", "summary", "-u", f"--repo={repo}", *gpg], check=True,
                       capture_output=True)
    finally:
        stop_agent(signer.homedir)
        shutil.rmtree(tree, ignore_errors=True)
    return commit


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    top = tmp_path_factory.mktemp("repro")
    home = top / "gnupg"
    fingerprint = ensure_key(home)
    signer = Signer(home, fingerprint)
    key_file = top / "key.asc"
    export_public_key(home, fingerprint, key_file)
    root = top / "www"
    root.mkdir()
    repo = root / "ostree"
    subprocess.run(["ostree", "init", f"--repo={repo}", "--mode=archive"], check=True)
    commit_os(repo, signer, "1.0", FIRST_TIME)
    work = top / "flatpak-build"
    try:
        build_runtime(root / "flatpak", work, signer=signer, locale_extension=False)
        build_app(root / "flatpak", work, "org.eib.Hello", signer=signer)
        update_repo(root / "flatpak", signer, title="repro apps", default_branch="stable")
    finally:
        stop_agent(home)
        shutil.rmtree(work, ignore_errors=True)
    with serve(root) as url:
        yield Served(url, root, signer, key_file, fingerprint)
    stop_agent(home)


@pytest.fixture
def repo_copy(served: Served, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """copy(kind) → the name of a fresh served copy of the `ostree` or `flatpak` repo."""
    made: list[Path] = []

    def copy(kind: str) -> str:
        name = f"{kind}-{request.node.name}-{len(made)}"
        dest = served.root / name
        shutil.copytree(served.root / kind, dest, symlinks=True)
        made.append(dest)
        return name

    yield copy
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def write_recipe(
    recipe_dir: Path,
    served: Served,
    *,
    ostree_repo: str = "ostree",
    flatpak_repo: str = "flatpak",
    hooks: dict[str, str] | None = None,
    url: str | None = None,
    apps: list[str] | None = None,
) -> Path:
    """A recipe pulling REF from the served OSTree repo and one app from the Flatpak repo;
    `hooks` maps `image/NAME` to the hook's text (written below the recipe's hooks/)."""
    hooks = hooks if hooks is not None else {"image/50-hello": "echo hello\n"}
    groups: dict[str, list[str]] = {}
    for where, text in hooks.items():
        group, name = where.split("/")
        groups.setdefault(group, []).append(name)
        hook = recipe_dir / "hooks" / group / name
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(textwrap.dedent(text))
    recipe = {
        "eib": 1,
        "variant": {"product": "repro", "branch": "master", "arch": "amd64",
                    "personality": "base"},
        "ostree": {
            "url": url or f"{served.url}/{ostree_repo}",
            "ref": REF,
            "remote": "repro",
            "os": "repro",
            "gpg_keys": [str(served.key_file)],
        },
        "image": {"hostname": "repro"},
        "flatpak": {
            "remotes": {
                "apps": {
                    "url": f"{served.url}/{flatpak_repo}",
                    "gpg_key": str(served.key_file),
                    "default_branch": "stable",
                    "apps": apps if apps is not None else ["org.eib.Hello"],
                }
            }
        },
        "hooks": groups,
    }
    recipe_dir.mkdir(parents=True, exist_ok=True)
    path = recipe_dir / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def eib_env(cache: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    env["SOURCE_DATE_EPOCH"] = str(FIRST_TIME)
    if cache is not None:
        env["EIB_CACHE_DIR"] = str(cache)
    return env


def eib(*args: str | Path, cache: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `eib` command line."""
    return subprocess.run([*EIB, *(str(a) for a in args)], capture_output=True, text=True,
                          env=eib_env(cache), timeout=timeout, check=False)


def read_yaml(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class Locked:
    """The session's recipe and the lock `eib lock` wrote for it (read-only for tests)."""

    recipe: Path
    lock: Path
    stdout: str


@pytest.fixture(scope="session")
def locked(tmp_path_factory: pytest.TempPathFactory, served: Served) -> Locked:
    recipe = write_recipe(tmp_path_factory.mktemp("locked"), served)
    proc = eib("lock", recipe)
    assert proc.returncode == 0, proc.stderr
    return Locked(recipe, recipe.with_name("recipe.lock"), proc.stdout)
