"""A locked build stops (exit 2, before anything is built) when its upstream is now
signed by another key than the one the lock recorded."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from eib.demo.gpgkey import export_public_key, key_fingerprint, stop_agent

from .conftest import REF, Served, eib, write_recipe


@pytest.fixture
def new_key(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The publisher's new signing key: (GNUPGHOME, fingerprint)."""
    home = tmp_path / "new-gnupg"
    home.mkdir(mode=0o700)
    params = ("%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
              "Name-Real: New Publisher Key\nExpire-Date: 0\n%commit\n")
    subprocess.run(["gpg", "--batch", "--homedir", str(home), "--gen-key"], input=params,
                   text=True, check=True, capture_output=True)
    fingerprint = key_fingerprint(home)
    assert fingerprint is not None
    yield home, fingerprint
    stop_agent(home)


def _locked_recipe(tmp_path: Path, served: Served, ostree_repo: str = "ostree",
                   flatpak_repo: str = "flatpak") -> tuple[Path, Path, Path]:
    """A recipe whose OS and apps keys are files of its own, and its lock."""
    recipe = write_recipe(tmp_path / "r", served, ostree_repo=ostree_repo,
                          flatpak_repo=flatpak_repo)
    key_file = tmp_path / "r" / "os-key.asc"
    shutil.copy(served.key_file, key_file)
    data = yaml.safe_load(recipe.read_text())
    data["ostree"]["gpg_keys"] = ["os-key.asc"]
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = eib("lock", recipe)
    assert proc.returncode == 0, proc.stderr
    return recipe, recipe.with_name("recipe.lock"), key_file


def _resign_os(served: Served, name: str, home: Path, key: str) -> None:
    repo = served.ostree_repo(name)
    commit = served.rev_parse(REF, name)
    # The detached metadata holds the signatures: the old one goes, the new one comes.
    (repo / "objects" / commit[:2] / f"{commit[2:]}.commitmeta").unlink()
    for argv in (["gpg-sign", f"--gpg-homedir={home}", commit, key],
                 ["summary", "-u", f"--gpg-homedir={home}", f"--gpg-sign={key}"]):
        subprocess.run(["ostree", argv[0], f"--repo={repo}", *argv[1:]], check=True,
                       capture_output=True)


def _run_locked(tmp_path: Path, recipe: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    return eib("run", recipe, "--lock", lock, "--dry-run", "--no-disk",
               "--cache-dir", tmp_path / "cache", "--work-dir", tmp_path / "work",
               "--output-dir", tmp_path / "out", timeout=300)


def _nothing_built(tmp_path: Path, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_key_file_now_holding_another_key_is_refused(
    tmp_path: Path, served: Served, repo_copy: Callable[[str], str], new_key: tuple[Path, str]
) -> None:
    name = repo_copy("ostree")
    recipe, lock, key_file = _locked_recipe(tmp_path, served, ostree_repo=name)
    home, new = new_key
    # The publisher re-signs with a new key and the key file the recipe reads follows.
    _resign_os(served, name, home, new)
    export_public_key(home, new, key_file)
    proc = _run_locked(tmp_path, recipe, lock)
    _nothing_built(tmp_path, proc)
    assert f"expected {served.fingerprint}, found {new}" in proc.stderr
    assert "ostree.gpg_keys" in proc.stderr


def test_pinned_commit_resigned_by_another_key_is_refused(
    tmp_path: Path, served: Served, repo_copy: Callable[[str], str], new_key: tuple[Path, str]
) -> None:
    name = repo_copy("ostree")
    recipe, lock, _key_file = _locked_recipe(tmp_path, served, ostree_repo=name)
    home, new = new_key
    _resign_os(served, name, home, new)  # the recipe's key file is unchanged
    proc = _run_locked(tmp_path, recipe, lock)
    _nothing_built(tmp_path, proc)
    assert "is no longer signed by the keys the lock trusts" in proc.stderr
    assert f"expected {served.fingerprint}, found signatures by key id {new[-16:]}" \
        in proc.stderr


def test_flatpak_summary_resigned_by_another_key_is_refused(
    tmp_path: Path, served: Served, repo_copy: Callable[[str], str], new_key: tuple[Path, str]
) -> None:
    name = repo_copy("flatpak")
    recipe, lock, _key_file = _locked_recipe(tmp_path, served, flatpak_repo=name)
    home, new = new_key
    subprocess.run(["flatpak", "build-update-repo", f"--gpg-homedir={home}",
                    f"--gpg-sign={new}", str(served.root / name)], check=True,
                   capture_output=True)
    proc = _run_locked(tmp_path, recipe, lock)
    _nothing_built(tmp_path, proc)
    assert "the summary of Flatpak remote apps is no longer signed by the key the lock " \
        f"trusts: expected {served.fingerprint}" in proc.stderr
