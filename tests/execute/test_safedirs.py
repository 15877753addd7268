"""Build dirs a local user could control are refused; a user's own dirs are never wiped."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import EIB, Build, Served, Signing, eib_env, write_recipe

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A dir in /var/tmp, the world-writable place the old default work dir lived in."""
    top = Path(tempfile.mkdtemp(prefix="eib-safedirs-", dir="/var/tmp"))
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run_in(build: Build, work: Path, *, output: Path | None = None) -> tuple[int, str]:
    argv = [*EIB, "run", str(build.recipe), "--dry-run", "--no-disk",
            "--cache-dir", str(build.cache), "--work-dir", str(work),
            "--output-dir", str(output or work / "out")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=eib_env(), timeout=120,
                          check=False)
    return proc.returncode, proc.stderr


def test_work_dir_created_first_by_another_user_is_refused(
    build: Build, served: Served, signing: Signing, shared_tmp: Path
) -> None:
    write_recipe(build.recipe.parent, served, signing)
    # A local user got there first: the dir root would build in is theirs.
    work = shared_tmp / "eib"
    work.mkdir()
    os.chown(work, NOBODY.pw_uid, NOBODY.pw_gid)
    status, err = _run_in(build, work)
    assert status == 2, err
    assert f"{work} is owned by nobody (uid {NOBODY.pw_uid})" in err
    assert "Traceback" not in err
    assert list(work.iterdir()) == []


def test_dir_below_a_world_writable_parent_without_sticky_bit_is_refused(
    build: Build, served: Served, signing: Signing, shared_tmp: Path
) -> None:
    write_recipe(build.recipe.parent, served, signing)
    open_parent = shared_tmp / "open"
    open_parent.mkdir()
    open_parent.chmod(0o777)  # anyone may rename the work dir away and put their own there
    work = open_parent / "work"
    status, err = _run_in(build, work)
    assert status == 2, err
    assert f"{open_parent} (drwxrwxrwx) is writable by other users and has no sticky bit" in err
    output = shared_tmp / "group-out"
    output.mkdir()
    output.chmod(0o770)
    status, err = _run_in(build, shared_tmp / "work", output=output)
    assert status == 2, err
    assert f"--output-dir: {output} (drwxrwx---) is writable by other users" in err


def test_work_dir_of_someone_else_is_refused_not_wiped(
    build: Build, served: Served, signing: Signing, tmp_path: Path
) -> None:
    write_recipe(build.recipe.parent, served, signing)
    mine = tmp_path / "home"
    (mine / "project").mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes\n")
    (mine / "project" / "main.c").write_text("int main(void) { return 0; }\n")
    status, err = _run_in(build, mine, output=tmp_path / "out")
    assert status == 2, err
    assert f"--work-dir: {mine} is not empty and is not an eib work dir" in err
    assert (mine / "notes.txt").read_text() == "my notes\n"
    assert (mine / "project" / "main.c").is_file()


def test_new_dirs_are_private_and_an_eib_work_dir_is_reused(
    build: Build, served: Served, signing: Signing, tmp_path: Path
) -> None:
    write_recipe(build.recipe.parent, served, signing)
    work = tmp_path / "new" / "work"
    output = tmp_path / "new-out" / "out"
    status, err = _run_in(build, work, output=output)
    assert status == 0, err
    for made in (work, work.parent, output, output.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    assert (work / ".eib-work-dir").is_file()
    (work / "left-over").write_text("from the last build\n")
    status, err = _run_in(build, work, output=output)
    assert status == 0, err
    assert not (work / "left-over").exists()
    # An empty dir is adopted.
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.rmtree(output)
    status, err = _run_in(build, empty, output=output)
    assert status == 0, err
    assert (empty / ".eib-work-dir").is_file()


def test_default_dirs_are_under_a_root_owned_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    from eib.commands.run import resolve_dirs

    for name in ("EIB_CACHE_DIR", "EIB_WORK_DIR", "EIB_OUTPUT_DIR"):
        monkeypatch.delenv(name, raising=False)
    cache, work, output = resolve_dirs(None, None, None)
    assert (str(cache), str(work), str(output)) == (
        "/var/cache/eib", "/var/lib/eib/work", "/var/lib/eib/out")
