"""Hooks see a clean environment, and the built-in hooks never write through the OS
tree's symlinks onto the build host."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import OS_NAME, Build, Served, Signing, eib_env, write_hook, write_recipe


def test_hooks_get_a_clean_environment_plus_what_the_recipe_passes(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "content", "10-env", """
        env > "$EIB_TMPDIR/hook-env"
    """)
    write_recipe(recipe_dir, served, signing,
                 hooks={"content": ["10-env"], "pass_env": ["EIB_TEST_PASSED", "SITE_MIRROR"]})
    env = eib_env()
    env.update({"AWS_SECRET_ACCESS_KEY": "canary-aws-secret", "GITHUB_TOKEN": "canary-token",
                "SITE_MIRROR": "https://mirror.example.invalid", "PATH": "/evil/bin:" + env["PATH"],
                "LD_PRELOAD": "/evil/lib.so", "LANG": "de_DE.UTF-8"})
    proc = subprocess.run(build.argv(), capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    seen = dict(line.split("=", 1) for line in
                (build.work / "tmp" / "hook-env").read_text().splitlines() if "=" in line)
    assert "canary" not in (build.work / "tmp" / "hook-env").read_text()
    for name in ("AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "LD_PRELOAD"):
        assert name not in seen
    assert seen["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert seen["LANG"] == "C.UTF-8" and seen["TERM"] == "dumb" and seen["HOME"] == "/root"
    assert seen["SITE_MIRROR"] == "https://mirror.example.invalid"  # named in hooks.pass_env
    assert seen["SOURCE_DATE_EPOCH"] == env["SOURCE_DATE_EPOCH"]
    assert seen["EIB_PRODUCT"] == "eibtest"
    # The build writes into a staging dir in the output dir, swapped in at the end.
    assert seen["EIB_OUTDIR"].startswith(str(build.out / ".eib-new-"))


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A host dir outside /tmp: the deployment's /tmp is a tmpfs while image hooks run."""
    top = Path(tempfile.mkdtemp(prefix="eib-victims-", dir="/var/lib"))
    yield top
    shutil.rmtree(top, ignore_errors=True)


def test_builtin_hooks_resolve_absolute_symlinks_inside_the_deployment(
    build: Build, served: Served, signing: Signing, host_dir: Path
) -> None:
    host = host_dir / "host"
    (host / "X11").mkdir(parents=True)
    victims = {name: host / name for name in ("hostname", "locale.conf", "vconsole.conf")}
    for victim in victims.values():
        victim.write_text("host file\n")
    recipe_dir = build.recipe.parent
    # OS content with absolute symlinks, as a careless or hostile OS tree may ship them.
    write_hook(recipe_dir, "image", "40-links", f"""
        etc="$OSTREE_DEPLOYMENT/etc"
        for name in hostname locale.conf vconsole.conf; do
          rm -f "$etc/$name"; ln -s "{host}/$name" "$etc/$name"
        done
        rm -rf "$etc/X11"; ln -s "{host}/X11" "$etc/X11"
        mkdir -p "$OSTREE_DEPLOYMENT{host}"   # the OS's own dir of that name
        mkdir -p "$OSTREE_DEPLOYMENT/usr/share/X11"
    """)
    write_recipe(recipe_dir, served, signing,
                 hooks={"image": ["40-links", "50-hostname", "50-language", "50-xkb"]},
                 image={"hostname": "eib-test-host", "language": "pt_BR.utf8",
                        "xkb_layout": "br"})
    proc = build.run()
    assert proc.returncode == 0, proc.stderr
    for victim in victims.values():
        assert victim.read_text() == "host file\n", victim
    assert list((host / "X11").iterdir()) == []
    # The OS's /var/lib is its persistent var (mounted at /var while hooks run).
    var = build.work / "sysroot" / "ostree" / "deploy" / OS_NAME / "var"
    inside = var / str(host.relative_to("/var"))
    assert (inside / "hostname").read_text() == "eib-test-host\n"
    assert (inside / "locale.conf").read_text() == "LANG=pt_BR.utf8\n"
    assert "XKBLAYOUT=br" in (inside / "vconsole.conf").read_text()
    assert (inside / "X11" / "xorg.conf.d" / "00-keyboard.conf").is_file()


def test_shell_and_python_resolution_agree(tmp_path: Path) -> None:
    from eib.execute.inroot import resolve_in_root
    from eib.paths import SHELL_LIBRARY

    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "etc").symlink_to("/usr/lib")
    (root / "usr" / "lib" / "up").symlink_to("../../../../..")
    (root / "usr" / "lib" / "loop").symlink_to("loop")
    for path in ("/etc/hostname", "etc/up/etc/x", "/../../etc", "/usr/./lib/up/usr"):
        shell = subprocess.run(
            ["bash", "-c", f'source "{SHELL_LIBRARY}"; eib_root_path "$1" "$2"', "-",
             str(root), path], capture_output=True, text=True, check=True).stdout.strip()
        assert shell == str(resolve_in_root(root, path)), path
        assert shell.startswith(str(root)), path
    script = f'source "{SHELL_LIBRARY}"; eib_root_path "$1" /etc/loop'
    failed = subprocess.run(["bash", "-c", script, "-", str(root)], capture_output=True,
                            text=True, check=False)
    assert failed.returncode != 0 and "too many levels" in failed.stderr
    assert os.path.isdir(root / "usr" / "lib")
