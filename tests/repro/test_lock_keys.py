"""A locked build stops when its upstream is now verified with another key than the lock's."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from eib.demo.gpgkey import ensure_key, export_public_key, stop_agent

from .conftest import REF, Served, eib, write_recipe


def test_locked_build_refuses_an_upstream_now_signed_by_another_key(
    tmp_path: Path, served: Served, repo_copy: Callable[[str], str]
) -> None:
    name = repo_copy("ostree")
    recipe = write_recipe(tmp_path / "r", served, ostree_repo=name)
    key_file = tmp_path / "r" / "os-key.asc"
    shutil.copy(served.key_file, key_file)
    data = yaml.safe_load(recipe.read_text())
    data["ostree"]["gpg_keys"] = ["os-key.asc"]
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = eib("lock", recipe)
    assert proc.returncode == 0, proc.stderr
    lock = recipe.with_name("recipe.lock")

    # The publisher re-signs the pinned commit and the summary with a new key, and
    # the key file the recipe reads now holds that key.
    home = tmp_path / "new-gnupg"
    new = ensure_key(home)
    repo = served.ostree_repo(name)
    commit = served.rev_parse(REF, name)
    try:
        subprocess.run(["ostree", "gpg-sign", f"--repo={repo}", "--delete", commit,
                        served.fingerprint], check=True, capture_output=True)
        subprocess.run(["ostree", "gpg-sign", f"--repo={repo}", f"--gpg-homedir={home}",
                        commit, new], check=True, capture_output=True)
        subprocess.run(["ostree", "summary", "-u", f"--repo={repo}", f"--gpg-homedir={home}",
                        f"--gpg-sign={new}"], check=True, capture_output=True)
        export_public_key(home, new, key_file)
    finally:
        stop_agent(home)

    work = tmp_path / "work"
    proc = eib("run", recipe, "--lock", lock, "--dry-run", "--no-disk",
               "--cache-dir", tmp_path / "cache", "--work-dir", work,
               "--output-dir", tmp_path / "out", timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"expected {served.fingerprint}, found {new}" in proc.stderr
    assert "ostree.gpg_keys" in proc.stderr
    assert not work.exists() and not (tmp_path / "out").exists()
