"""What a recipe trusts: remotes without keys, explicit gpg_verify: false, keys over http."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from eib.errors import UserError

from .conftest import run_eib

OSTREE = "ostree: {url: 'https://os.example.org/repo', ref: os/x/amd64/master%s}\n"


def _recipe(write: Callable[..., Path], ostree_extra: str = "", flatpak: str = "") -> Path:
    return write("r.yaml", "eib: 1\nvariant: {arch: amd64}\n" + OSTREE % ostree_extra + flatpak)


def test_ostree_remote_without_keys_is_refused(write: Callable[..., Path]) -> None:
    proc = run_eib("validate", _recipe(write))
    assert proc.returncode == 2
    assert proc.stderr.startswith("eib: error: ")
    assert "r.yaml:3: ostree.gpg_keys: no gpg_keys" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_flatpak_remote_without_key_is_refused(write: Callable[..., Path], tmp_path: Path) -> None:
    key = tmp_path / "os.asc"
    key.write_text("not read at validate time\n")
    recipe = _recipe(write, f", gpg_keys: [{key}]",
                     "flatpak:\n  remotes:\n    apps:\n      url: https://apps.example.org\n"
                     "      apps: [org.example.App]\n")
    proc = run_eib("validate", recipe)
    assert proc.returncode == 2
    assert "r.yaml:6: flatpak.remotes.apps.gpg_key: no gpg_key" in proc.stderr
    assert "--no-gpg-verify" in proc.stderr


def test_explicit_gpg_verify_false_warns_in_validate_plan_and_json(
    write: Callable[..., Path],
) -> None:
    recipe = _recipe(write, ", gpg_verify: false",
                     "flatpak:\n  remotes:\n    apps:\n      url: https://apps.example.org\n"
                     "      gpg_verify: false\n      apps: [org.example.App]\n")
    proc = run_eib("validate", recipe)
    assert proc.returncode == 0, proc.stderr
    assert "warning: ostree.gpg_verify is false: the OS from https://os.example.org/repo" \
        in proc.stderr
    assert "warning: flatpak.remotes.apps.gpg_verify is false" in proc.stderr
    tree = run_eib("plan", recipe)
    assert tree.returncode == 0, tree.stderr
    assert "warnings" in tree.stdout and "ostree.gpg_verify is false" in tree.stdout
    plan = json.loads(run_eib("plan", recipe, "--json").stdout)
    assert len(plan["warnings"]) == 2
    assert plan["ostree"]["gpg_verify"] is False


@pytest.mark.parametrize("field", ["gpg_key", "repo_file"])
def test_keys_and_repo_files_over_plain_http_are_refused(
    write: Callable[..., Path], field: str
) -> None:
    recipe = _recipe(write, ", gpg_verify: false",
                     "flatpak:\n  remotes:\n    apps:\n      url: https://apps.example.org\n"
                     f"      {field}: http://apps.example.org/key\n      apps: [org.A]\n")
    proc = run_eib("validate", recipe)
    assert proc.returncode == 2
    assert f"flatpak.remotes.apps.{field}: 'http://apps.example.org/key' is fetched without " \
        "TLS" in proc.stderr


def test_repo_file_without_gpgkey_is_refused_when_read(tmp_path: Path) -> None:
    from eib.compile.carried import fold_remote
    from eib.flatpak.remotes import remote_config
    from eib.model.recipe import FlatpakRemote

    repo_file = tmp_path / "apps.flatpakrepo"
    repo_file.write_text("[Flatpak Repo]\nUrl=https://apps.example.org\nTitle=Apps\n")
    remote = FlatpakRemote(repo_file=str(repo_file))
    with pytest.raises(UserError) as info:
        fold_remote("apps", remote)
    assert info.value.key == "flatpak.remotes.apps.gpg_key"
    folded = fold_remote("apps", FlatpakRemote(repo_file=str(repo_file), gpg_verify=False))
    assert folded.gpg_key == "" and folded.repo_file == ""
    assert remote_config("apps", folded, False).gpg_key is None


def test_a_disabled_remotes_repo_file_is_never_read(write: Callable[..., Path]) -> None:
    """As the legacy builder skipped a disabled remote's section (a branch file
    enables Flathub Beta; other branches must plan where it cannot be reached)."""
    remote = ("flatpak:\n  remotes:\n    beta:\n"
              "      repo_file: https://127.0.0.1:1/beta.flatpakrepo\n"
              "      enable: %s\n      apps: [org.example.App]\n")
    proc = run_eib("plan", _recipe(write, ", gpg_verify: false", remote % "false"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["flatpak"]["remotes"]["beta"]["enable"] is False
    proc = run_eib("plan", _recipe(write, ", gpg_verify: false", remote % "true"))
    assert proc.returncode == 2
    assert "r.yaml:7: flatpak.remotes.beta.repo_file: cannot read " \
        "'https://127.0.0.1:1/beta.flatpakrepo'" in proc.stderr
