"""The buildroot on the busybox OS, which has no bash: a legacy tree's builds turn it off
(and say so), and a recipe that asks for it fails in one line, leaving nothing mounted."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import (
    EIB,
    REF,
    Build,
    Served,
    Signing,
    eib_env,
    mounts_under,
    write_hook,
    write_recipe,
)


def _host_hook(top: Path) -> None:
    write_hook(top, "image", "10-host", """
        echo "host side" > "$OSTREE_DEPLOYMENT/etc/host-side"
    """)


def test_legacy_tree_without_bash_runs_hooks_on_the_host(
    build: Build, served: Served, signing: Signing
) -> None:
    top = build.top / "legacy"
    config = top / "config"
    config.mkdir(parents=True)
    (config / "defaults.ini").write_text(
        f"[ostree]\nurl = {served.url}/good\nref = {REF}\nremote = eibtest\nos = eibtest\n"
        f"gpg_keys = {signing.good_asc}\npull_retries = 0\n"
        "\n[image]\nhooks_add = 10-host\n"
    )
    _host_hook(top)
    plan = subprocess.run([*EIB, "plan", str(config), "--json"],
                          capture_output=True, text=True, env=eib_env(), check=False)
    assert plan.returncode == 0, plan.stderr
    assert '"buildroot": "auto"' in plan.stdout  # unset: decided at run time
    proc = subprocess.run(build.argv(source=[str(config)]), capture_output=True, text=True,
                          env=eib_env(), timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    log = (build.out / "build.txt").read_text()
    assert "host-side hooks run on the host: the OS tree of " in log
    assert log.count("has no /bin/bash") == 1
    assert (build.deployment() / "etc" / "host-side").read_text() == "host side\n"
    assert not (build.cache / "buildroot").exists()  # no checkout for nothing


def test_buildroot_true_without_bash_fails_in_one_line(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_recipe(recipe_dir, served, signing, hooks={"image": ["10-host"]},
                 build={"buildroot": True})
    _host_hook(recipe_dir)
    proc = build.run()
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("eib: build failed: image/buildroot: build.buildroot is true")
    assert "build.buildroot is true but the OS tree of " in errors[0]
    assert "has no /bin/bash" in errors[0]
    assert mounts_under(build.top) == []
    assert not (build.work / "buildroot").exists()
    assert not (build.deployments() and (build.deployment() / "etc" / "host-side").exists())
