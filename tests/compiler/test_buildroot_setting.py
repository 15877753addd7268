"""`build.buildroot`: what a recipe, `--set` and a legacy tree's `[buildroot]` put in the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from eib.compile.compiler import compile_recipe
from eib.errors import UserError

OSTREE = ("ostree: {url: 'http://127.0.0.1:1/repo', ref: os/x/amd64/master, "
          "gpg_verify: false}\n")


def test_a_recipe_sets_it_under_build_and_unset_is_off(write) -> None:
    on = write("on.yaml", OSTREE + "build: {buildroot: true, buildroot_mounts: [/srv/data]}\n")
    plan = compile_recipe(on).plan
    assert (plan.build.buildroot, plan.build.buildroot_mounts) == (True, ["/srv/data"])
    assert "EIB_BUILDROOT" not in plan.env  # how the build runs is no hook option
    assert compile_recipe(write("off.yaml", OSTREE)).plan.build.buildroot is False
    assert compile_recipe(on, sets=["build.buildroot=false"]).plan.build.buildroot is False


def test_the_rest_of_build_stays_derived(write) -> None:
    bad = write("bad.yaml", OSTREE + "build: {arch: arm64}\n")
    with pytest.raises(UserError, match=r"the build section is derived.*build\.buildroot"):
        compile_recipe(bad)


def _legacy(top: Path, buildroot: str) -> Path:
    config = top / "config"
    config.mkdir(parents=True)
    (config / "defaults.ini").write_text(
        "[ostree]\nurl = http://127.0.0.1:1/repo\nref = os/x/amd64/master\n"
        "gpg_verify = false\n" + buildroot)
    return config


def test_a_legacy_tree_decides_at_run_time_unless_buildroot_enable(tmp_path: Path) -> None:
    auto = compile_recipe(_legacy(tmp_path / "a", "[buildroot]\nmounts = /b /a\n")).plan
    assert auto.build.buildroot == "auto"
    assert sorted(auto.build.buildroot_mounts) == ["/a", "/b"]
    assert "EIB_BUILDROOT_MOUNTS" in auto.env  # the legacy section is still exported
    off = compile_recipe(_legacy(tmp_path / "b", "[buildroot]\nenable = False\n")).plan
    assert off.build.buildroot is False
    with pytest.raises(UserError, match="expected true or false"):
        compile_recipe(_legacy(tmp_path / "c", "[buildroot]\nenable = maybe\n"))


def test_a_recipe_may_ask_for_auto_and_carry_the_legacy_section(write) -> None:
    auto = write("auto.yaml", OSTREE + "build: {buildroot: auto}\n")
    assert compile_recipe(auto).plan.build.buildroot == "auto"
    # A free-form `buildroot:` section (as `eib convert` writes it) is read as in a tree:
    # its enable wins over auto, an explicit true or false wins over it.
    section = "buildroot: {enable: 'false', mounts: [/srv/a, /srv/b]}\n"
    off = write("off.yaml", OSTREE + "build: {buildroot: auto}\n" + section)
    plan = compile_recipe(off).plan
    assert (plan.build.buildroot, plan.build.buildroot_mounts) == (False, ["/srv/a", "/srv/b"])
    on = write("on.yaml", OSTREE + "build: {buildroot: true}\n" + section)
    assert compile_recipe(on).plan.build.buildroot is True
    assert compile_recipe(write("plain.yaml", OSTREE + section)).plan.build.buildroot is False
    bad = write("bad.yaml", OSTREE + "buildroot: {enable: maybe}\n")
    with pytest.raises(UserError, match=r"bad.yaml.*buildroot\.enable.*expected true or false"):
        compile_recipe(bad)
    with pytest.raises(UserError, match=r"build\.buildroot"):
        compile_recipe(write("worse.yaml", OSTREE + "build: {buildroot: sometimes}\n"))
