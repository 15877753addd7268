"""`eib lock`, `eib plan --lock` and pinned commits that went away, against real
repos served on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from eib.compile.compiler import CompileRequest, compile_plan
from eib.errors import BuildError, UserError
from eib.lock.file import read_lock
from eib.lock.resolve import check_commit_available, key_fingerprints

from .conftest import (
    APP,
    FIRST_TIME,
    REF,
    RUNTIME,
    SECOND_TIME,
    Locked,
    Served,
    commit_os,
    eib,
    read_yaml,
    write_recipe,
)

VARIANT = "repro/master/amd64/amd64/base"


def _entry(lock: Path, key: str = VARIANT) -> dict[str, object]:
    variants = read_yaml(lock)["variants"]
    assert isinstance(variants, dict)
    entry = variants[key]
    assert isinstance(entry, dict)
    return entry


def test_lock_pins_the_served_commits(locked: Locked, served: Served) -> None:
    assert f"wrote {locked.lock}" in locked.stdout
    assert f"{VARIANT}: {REF} @ {served.rev_parse(REF)[:12]}, 2 Flatpak ref(s)" in locked.stdout
    entry = _entry(locked.lock)
    assert entry["variant"] == {"product": "repro", "branch": "master", "arch": "amd64",
                                "platform": "amd64", "personality": "base"}
    assert entry["ostree"] == {
        "url": f"{served.url}/ostree",
        "ref": REF,
        "commit": served.rev_parse(REF),
        "timestamp": FIRST_TIME,
        "version": "1.0",
        "gpg_keys": [served.fingerprint],
    }
    assert entry["flatpak"] == {
        "arch": "x86_64",
        "remotes": {
            "apps": {
                "url": f"{served.url}/flatpak",
                "gpg_key": served.fingerprint,
                "refs": {
                    APP: served.rev_parse(APP, "flatpak"),
                    RUNTIME: served.rev_parse(RUNTIME, "flatpak"),
                },
            }
        },
    }
    plan = compile_plan(CompileRequest(locked.recipe, {"product": "repro"}, lock=locked.lock)).plan
    flatpak_commits = {APP: served.rev_parse(APP, "flatpak"),
                       RUNTIME: served.rev_parse(RUNTIME, "flatpak")}
    assert plan.ostree.commit == served.rev_parse(REF)
    assert plan.flatpak.remotes["apps"].commits == dict(sorted(flatpak_commits.items()))
    assert plan.build.build_version == time.strftime("%y%m%d-%H%M%S", time.gmtime(FIRST_TIME))
    assert plan.source_date_epoch == FIRST_TIME


def test_lock_is_byte_identical_across_runs(tmp_path: Path, locked: Locked) -> None:
    again = tmp_path / "again.lock"
    proc = eib("lock", locked.recipe, "-o", again)
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == locked.lock.read_bytes()
    text = again.read_text()
    assert text.index("eib_lock") < text.index("recipe:") < text.index("variants:")


def test_lock_of_a_matrix_is_one_file(tmp_path: Path, locked: Locked) -> None:
    out = tmp_path / "matrix.lock"
    proc = eib("lock", locked.recipe, "--matrix", "personality=base,fr", "-o", out)
    assert proc.returncode == 0, proc.stderr
    variants = read_yaml(out)["variants"]
    assert isinstance(variants, dict)
    assert sorted(variants) == [VARIANT, "repro/master/amd64/amd64/fr"]
    assert variants[VARIANT] == _entry(locked.lock)
    assert variants["repro/master/amd64/amd64/fr"]["variant"]["personality"] == "fr"


def test_key_fingerprints_reads_the_key_file(served: Served) -> None:
    assert key_fingerprints(served.key_file) == [served.fingerprint]


def test_plan_with_lock_pins_the_commit_while_the_ref_moves(
    tmp_path: Path, served: Served, repo_copy: object
) -> None:
    name = repo_copy("ostree")  # type: ignore[operator]
    recipe = write_recipe(tmp_path / "r", served, ostree_repo=name)
    assert eib("lock", recipe).returncode == 0
    locked = served.rev_parse(REF, name)
    newer = commit_os(served.root / name, served.signer, "2.0", SECOND_TIME)
    assert newer != locked

    pinned = eib("plan", recipe, "--lock", tmp_path / "r" / "recipe.lock", "--json")
    assert pinned.returncode == 0, pinned.stderr
    assert json.loads(pinned.stdout)["ostree"]["commit"] == locked
    unpinned = json.loads(eib("plan", recipe, "--json").stdout)
    assert unpinned["ostree"]["commit"] == ""

    relock = eib("lock", recipe, "-o", tmp_path / "new.lock")
    assert relock.returncode == 0, relock.stderr
    entry = _entry(tmp_path / "new.lock")
    assert entry["ostree"]["commit"] == newer  # type: ignore[index]
    assert entry["ostree"]["timestamp"] == SECOND_TIME  # type: ignore[index]


def test_plan_lock_without_the_variant_names_the_lock(locked: Locked) -> None:
    proc = eib("plan", locked.recipe, "--personality", "fr", "--lock", locked.lock)
    assert proc.returncode == 2
    assert str(locked.lock) in proc.stderr
    assert "variant repro/master/amd64/amd64/fr is not in the lock" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_lock_made_for_another_url_or_ref_is_refused(
    tmp_path: Path, served: Served, locked: Locked
) -> None:
    moved = write_recipe(tmp_path / "r", served, url=f"{served.url}/elsewhere")
    proc = eib("plan", moved, "--lock", locked.lock)
    assert proc.returncode == 2
    assert "run `eib lock` again" in proc.stderr
    assert f"now pulls ref {REF} from {served.url}/elsewhere" in proc.stderr
    with pytest.raises(UserError, match="run `eib lock` again"):
        compile_plan(CompileRequest(locked.recipe, sets=("ostree.ref=os/repro/amd64/other",),
                                    lock=locked.lock))
    plan = compile_plan(CompileRequest(locked.recipe, lock=locked.lock)).plan
    assert plan.ostree.commit == served.rev_parse(REF)


def test_broken_lock_file_is_a_user_error(tmp_path: Path, locked: Locked) -> None:
    bad = tmp_path / "bad.lock"
    bad.write_text("eib_lock: 1\nrecipe: x\nvariants:\n  a/b/c/d/e: {variant: {}}\n")
    proc = eib("plan", locked.recipe, "--lock", bad)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "invalid lock file" in proc.stderr
    proc = eib("plan", locked.recipe, "--lock", tmp_path / "missing.lock")
    assert proc.returncode == 2 and "lock file not found" in proc.stderr


def test_pruned_commit_fails_clearly(tmp_path: Path, served: Served, repo_copy: object) -> None:
    name = repo_copy("ostree")  # type: ignore[operator]
    repo = served.root / name
    recipe = write_recipe(tmp_path / "r", served, ostree_repo=name)
    lock = tmp_path / "r" / "recipe.lock"
    assert eib("lock", recipe).returncode == 0
    locked = served.rev_parse(REF, name)
    ok = eib("lock", recipe, "--check")
    assert ok.returncode == 0, ok.stderr
    assert "3 pinned commits of 1 variant(s)" in ok.stdout

    commit_os(repo, served.signer, "2.0", SECOND_TIME)
    subprocess.run(["ostree", "prune", f"--repo={repo}", "--refs-only", "--depth=0"],
                   check=True, capture_output=True)
    proc = eib("lock", recipe, "--check")
    assert proc.returncode == 1
    message = (f"commit {locked} of ref {REF} is no longer on {served.url}/{name}; "
               "run eib lock again")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr

    with pytest.raises(BuildError, match="is no longer on"):
        check_commit_available(f"{served.url}/{name}", REF, locked, [served.key_file])
    # The lock itself still reads fine: only the server lost the commit.
    assert read_lock(lock).variants[VARIANT].ostree.timestamp == FIRST_TIME


def test_removed_flatpak_commit_fails_clearly(
    tmp_path: Path, served: Served, repo_copy: object
) -> None:
    name = repo_copy("flatpak")  # type: ignore[operator]
    recipe = write_recipe(tmp_path / "r", served, flatpak_repo=name)
    assert eib("lock", recipe).returncode == 0
    commit = served.rev_parse(APP, name)
    obj = served.root / name / "objects" / commit[:2] / f"{commit[2:]}.commit"
    assert obj.is_file()
    obj.unlink()
    proc = eib("lock", recipe, "--check")
    assert proc.returncode == 1
    assert f"commit {commit} of ref {APP} is no longer on {served.url}/{name}" in proc.stderr


def test_unreachable_remote_and_missing_ref(tmp_path: Path, served: Served) -> None:
    down = write_recipe(tmp_path / "a", served, url="http://127.0.0.1:9/ostree")
    proc = eib("lock", down)
    assert proc.returncode == 1
    assert "cannot reach OSTree remote http://127.0.0.1:9/ostree" in proc.stderr
    assert not (tmp_path / "a" / "recipe.lock").exists()

    recipe = write_recipe(tmp_path / "b", served)
    proc = eib("lock", recipe, "--set", "ostree.ref=os/repro/amd64/nope")
    assert proc.returncode == 2
    assert f"OSTree ref os/repro/amd64/nope is not on {served.url}/ostree" in proc.stderr

    missing_app = write_recipe(tmp_path / "c", served, apps=["org.eib.Nope"])
    proc = eib("lock", missing_app)
    assert proc.returncode == 2
    assert "org.eib.Nope" in proc.stderr
