"""Installing a plan's Flatpaks into a deployment, checked with `flatpak` itself."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from eib.compile.compiler import compile_recipe
from eib.errors import UserError
from eib.flatpak.install import install_flatpaks, system_installation

if TYPE_CHECKING:
    from .conftest import Repos, Server

FlatpakCmd = Callable[..., subprocess.CompletedProcess[str]]


def _repo_file(repos: Repos, server: Server, tmp_path: Path) -> Path:
    binary_key = subprocess.run(
        ["gpg", "--homedir", str(repos.signer.homedir), "--batch", "--export",
         repos.signer.key_id],
        check=True, capture_output=True,
    ).stdout
    path = tmp_path / "second.flatpakrepo"
    path.write_text(
        "[Flatpak Repo]\n"
        f"Url={server.url}/second/\n"
        "Title=Second (from the file)\n"
        "DefaultBranch=stable\n"
        f"GPGKey={base64.b64encode(binary_key).decode()}\n"
    )
    return path


TWO_REMOTES = """
locales: [en, pt]
remotes:
  main:
    url: "{url}/main"
    deploy_url: https://flatpak.example.org/main
    gpg_key: "{key}"
    default_branch: stable
    prio: 5
    apps: [org.eib.Hello, org.eib.Clock]
  second:
    repo_file: "{repo_file}"
    deploy_url: https://flatpak.example.org/second
    title: Notes from the recipe
    noenumerate: true
    apps: [org.eib.Notes]
  disabled:
    url: "{url}/nowhere"
    enable: false
    apps: [org.eib.Nothing]
"""


def _objects(paths: list[str]) -> list[str]:
    """Content downloads: objects and deltas. A commit's detached signatures
    (`.commitmeta`) may change upstream, so they are always read, like summaries."""
    return [p for p in paths
            if ("/objects/" in p or "/deltas/" in p) and not p.endswith(".commitmeta")]


def _install(recipe_path: Path, dep: Path, tmp_path: Path) -> Path:
    plan = compile_recipe(recipe_path, {}).plan
    install_flatpaks(plan, dep, tmp_path / "cache", tmp_path / f"manifest-{dep.parents[3].name}")
    return tmp_path / f"manifest-{dep.parents[3].name}" / "flatpak.json"


def test_two_remotes_install_and_second_build_downloads_nothing(
    recipe: Callable[[str], Path],
    deployment: Callable[[str], Path],
    repos: Repos,
    server: Server,
    tmp_path: Path,
    flatpak_cmd: FlatpakCmd,
) -> None:
    repo_file = _repo_file(repos, server, tmp_path)
    recipe_path = recipe(TWO_REMOTES.replace("{repo_file}", str(repo_file)))
    dep = deployment("sysroot")
    mark = server.mark()
    manifest = _install(recipe_path, dep, tmp_path)
    first = server.since(mark)
    system_dir = tmp_path / "sysroot" / "ostree" / "deploy" / "eos" / "var" / "lib" / "flatpak"
    assert system_installation(dep) == system_dir

    listed = flatpak_cmd(system_dir, "list", "--system", "--all", "--columns=ref,origin")
    assert listed.returncode == 0, listed.stderr
    rows = {tuple(line.split("\t")) for line in listed.stdout.splitlines()}
    assert rows == {
        ("org.eib.Hello/x86_64/stable", "main"),
        ("org.eib.Clock/x86_64/stable", "main"),
        ("org.eib.Notes/x86_64/stable", "second"),
        ("org.eib.Platform/x86_64/1", "main"),
        ("org.eib.Platform.Locale/x86_64/1", "main"),
    }

    remotes = flatpak_cmd(system_dir, "remotes", "--system",
                          "--columns=name,url,title,priority,options")
    assert remotes.returncode == 0, remotes.stderr
    assert {tuple(line.rstrip("\t").split("\t")) for line in remotes.stdout.splitlines()} == {
        ("main", "https://flatpak.example.org/main", "Main test apps", "5"),
        ("second", "https://flatpak.example.org/second", "Notes from the recipe", "1",
         "no-enumerate"),
    }

    languages = flatpak_cmd(system_dir, "config", "--system", "--get", "languages")
    assert languages.stdout.strip() == "en;pt"
    locale_files = system_dir / "runtime/org.eib.Platform.Locale/x86_64/1/active/files"
    assert sorted(p.name for p in locale_files.iterdir() if p.is_dir()) == ["en", "pt"]

    ran = flatpak_cmd(system_dir, "run", "--system", "org.eib.Hello")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Hello from a test"

    appstream = system_dir / "appstream/main/x86_64/active/appstream.xml.gz"
    assert b"<id>org.eib.Hello</id>" in gzip.decompress(appstream.read_bytes())
    assert (system_dir / ".changed").exists()

    fragment = json.loads(manifest.read_text())["flatpak"]
    installed = fragment["installed"]
    assert set(installed) == {
        "app/org.eib.Hello/x86_64/stable", "app/org.eib.Clock/x86_64/stable",
        "app/org.eib.Notes/x86_64/stable", "runtime/org.eib.Platform/x86_64/1",
        "runtime/org.eib.Platform.Locale/x86_64/1",
    }
    for ref, entry in installed.items():
        repo = repos.second if entry["remote"] == "second" else repos.main
        commit = subprocess.run(["ostree", f"--repo={repo}", "rev-parse", ref],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert entry["commit"] == commit
        assert entry["download_size"] > 0 and entry["installed_size"] > 0
    assert installed["runtime/org.eib.Platform/x86_64/1"]["needed_by"] == [
        "app/org.eib.Clock/x86_64/stable", "app/org.eib.Hello/x86_64/stable",
        "app/org.eib.Notes/x86_64/stable",
    ]
    assert fragment["remotes"]["second"]["url"] == "https://flatpak.example.org/second"

    # The first build downloaded objects; a second one into a new sysroot, with the
    # same cache dir, downloads none and installs the same commits.
    assert _objects(first)
    dep2 = deployment("sysroot2")
    mark = server.mark()
    manifest2 = _install(recipe_path, dep2, tmp_path)
    again = server.since(mark)
    assert again, "the second build still reads the remotes' summaries"
    assert _objects(again) == []
    assert json.loads(manifest2.read_text())["flatpak"]["installed"] == installed


def _fails_before_install(
    recipe_path: Path, dep: Path, tmp_path: Path, server: Server, match: str
) -> UserError:
    plan = compile_recipe(recipe_path, {}).plan
    mark = server.mark()
    with pytest.raises(UserError, match=match) as err:
        install_flatpaks(plan, dep, tmp_path / "cache", tmp_path / "manifest")
    var = dep.parents[1] / "var"
    assert list(var.iterdir()) == [], "nothing may be written before the policies pass"
    assert not (tmp_path / "manifest").exists()
    assert _objects(server.since(mark)) == []
    return err.value


def test_excluded_dependency_names_the_app_that_needs_it(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], server: Server,
    tmp_path: Path,
) -> None:
    path = recipe("""
        remotes:
          main:
            url: "{url}/main"
            gpg_key: "{key}"
            apps: [org.eib.Clock, org.eib.Legacy]
            exclude: [org.eib.OtherPlatform]
    """)
    err = _fails_before_install(path, deployment("sysroot"), tmp_path, server, "excluded")
    assert err.key == "flatpak.remotes.main.exclude"
    assert "runtime/org.eib.OtherPlatform/x86_64/1 is excluded" in err.message
    assert "needed by app/org.eib.Legacy/x86_64/stable" in err.message


def test_excluded_app_named_directly(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], server: Server,
    tmp_path: Path,
) -> None:
    path = recipe("""
        remotes:
          main:
            url: "{url}/main"
            gpg_key: "{key}"
            apps: [org.eib.Clock]
            exclude: [app/org.eib.Clock]
    """)
    err = _fails_before_install(path, deployment("sysroot"), tmp_path, server, "excluded")
    assert "app/org.eib.Clock/x86_64/stable is excluded" in err.message
    assert "listed to install" in err.message


def test_extra_data_not_allowed(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], server: Server,
    tmp_path: Path,
) -> None:
    path = recipe("""
        remotes:
          main:
            url: "{url}/main"
            gpg_key: "{key}"
            apps: [org.eib.Hello, org.eib.Extra]
            allow_extra_data: [org.eib.Hello]
    """)
    err = _fails_before_install(path, deployment("sysroot"), tmp_path, server, "extra data")
    assert err.key == "flatpak.remotes.main.allow_extra_data"
    assert err.message.startswith("app/org.eib.Extra/x86_64/stable downloads extra data")


def test_unknown_app_lists_close_names(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], server: Server,
    tmp_path: Path,
) -> None:
    path = recipe("""
        remotes:
          main:
            url: "{url}/main"
            gpg_key: "{key}"
            apps: [org.eib.Hello, org.eib.Clocks]
    """)
    err = _fails_before_install(path, deployment("sysroot"), tmp_path, server, "not found")
    assert err.key == "flatpak.remotes.main.apps"
    assert "app 'org.eib.Clocks' (x86_64) not found on remote 'main'" in err.message
    assert err.hint is not None and "org.eib.Clock" in err.hint


def test_wrong_key_fails_before_install(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], server: Server,
    tmp_path: Path,
) -> None:
    other = tmp_path / "gnupg-other"
    other.mkdir(mode=0o700)
    subprocess.run(["gpg", "--homedir", str(other), "--batch", "--passphrase", "",
                    "--quick-gen-key", "Other <o@eib.invalid>", "ed25519", "sign", "never"],
                   check=True, capture_output=True)
    key = subprocess.run(["gpg", "--homedir", str(other), "--batch", "--armor", "--export"],
                         check=True, capture_output=True).stdout
    subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "all"], check=False)
    (tmp_path / "other.asc").write_bytes(key)
    path = recipe(f"""
        remotes:
          main:
            url: "{{url}}/main"
            gpg_key: "{tmp_path / 'other.asc'}"
            apps: [org.eib.Hello]
    """)
    plan = compile_recipe(path, {}).plan
    dep = deployment("sysroot")
    from eib.errors import BuildError

    with pytest.raises(BuildError, match="summary signature is not valid"):
        install_flatpaks(plan, dep, tmp_path / "cache", tmp_path / "manifest")
    assert list((dep.parents[1] / "var").iterdir()) == []


def test_p2p_remote_gets_its_collection_id(
    recipe: Callable[[str, str], Path], deployment: Callable[[str], Path], repos: Repos,
    tmp_path: Path, flatpak_cmd: FlatpakCmd,
) -> None:
    from eib.demo.flatpak_repo import Signer, build_app, build_runtime, update_repo

    signer = Signer(repos.signer.homedir, repos.signer.key_id, "org.eib.Test.P2P")
    repo = repos.root / "p2p"
    build_runtime(repo, tmp_path / "build", signer=signer, locale_extension=False)
    build_app(repo, tmp_path / "build", "org.eib.Hello", signer=signer)
    update_repo(repo, signer, default_branch="stable")
    flatpak_yaml = """
        remotes:
          p2p:
            url: "{url}/p2p"
            gpg_key: "{key}"
            collection_id: org.eib.Test.P2P
            apps: [org.eib.Hello]
    """
    dep = deployment("sysroot")
    install_flatpaks(compile_recipe(recipe(flatpak_yaml, ", p2p: true"), {}).plan, dep,
                     tmp_path / "cache", tmp_path / "manifest")
    system_dir = system_installation(dep)
    remotes = flatpak_cmd(system_dir, "remotes", "--system", "--columns=name,collection")
    assert remotes.stdout.split() == ["p2p", "org.eib.Test.P2P"]
    listed = flatpak_cmd(system_dir, "list", "--system", "--columns=ref")
    assert listed.stdout.split() == ["org.eib.Hello/x86_64/stable", "org.eib.Platform/x86_64/1"]

    # Without ostree.p2p the collection id is not deployed.
    dep2 = deployment("sysroot2")
    install_flatpaks(compile_recipe(recipe(flatpak_yaml), {}).plan, dep2,
                     tmp_path / "cache", tmp_path / "manifest2")
    plain = flatpak_cmd(system_installation(dep2), "remotes", "--system",
                        "--columns=name,collection")
    assert plain.stdout.split() == ["p2p", "-"]


def test_allowed_extra_data_is_installed(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], repos: Repos,
    server: Server, tmp_path: Path,
) -> None:
    path = recipe("""
        remotes:
          main:
            url: "{url}/main"
            gpg_key: "{key}"
            apps: [org.eib.Extra]
            allow_extra_data: [org.eib.Extra]
    """)
    dep = deployment("sysroot")
    mark = server.mark()
    install_flatpaks(compile_recipe(path, {}).plan, dep, tmp_path / "cache", tmp_path / "m")
    assert "/extra/blob.bin" in server.since(mark)
    extra = system_installation(dep) / "app/org.eib.Extra/x86_64/stable/active/files/extra"
    assert (extra / "blob.bin").read_bytes() == (repos.root / "extra" / "blob.bin").read_bytes()


def test_local_repo_path_as_remote(
    recipe: Callable[[str], Path], deployment: Callable[[str], Path], repos: Repos,
    tmp_path: Path, flatpak_cmd: FlatpakCmd,
) -> None:
    path = recipe(f"""
        remotes:
          local:
            url: "{repos.main}"
            deploy_url: https://flatpak.example.org/local
            gpg_key: "{{key}}"
            apps: [org.eib.Clock]
    """)
    dep = deployment("sysroot")
    install_flatpaks(compile_recipe(path, {}).plan, dep, tmp_path / "cache", tmp_path / "m")
    listed = flatpak_cmd(system_installation(dep), "list", "--system", "--columns=ref,origin")
    assert listed.stdout.split() == ["org.eib.Clock/x86_64/stable", "local",
                                     "org.eib.Platform/x86_64/1", "local"]
