"""The stage cache: keys that change exactly when inputs change, explanations that
name the change, an atomic store, and a size bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from eib.compile.compiler import CompileRequest, compile_plan
from eib.execute.cache import (
    cached_stage,
    entries,
    gc,
    lookup,
    restore,
    stage_key,
    stage_keys,
    store,
)
from eib.model.plan import Plan, load_plan_json

from .conftest import Locked, Served, eib, write_recipe

COMMIT = "ab" * 32
OTHER = "cd" * 32


JAN_2024 = 1704067200  # 240101-000000


def _plan(recipe: Path, *sets: str) -> Plan:
    request = CompileRequest(recipe, {}, (f"ostree.commit={COMMIT}", *sets),
                             source_date_epoch=JAN_2024)
    return compile_plan(request).plan


def _with_flatpak_commit(plan: Plan, commit: str) -> Plan:
    remotes = {name: remote.model_copy(update={"commits": {"app/x": commit}})
               for name, remote in plan.flatpak.remotes.items()}
    return plan.model_copy(update={"flatpak": plan.flatpak.model_copy(update={"remotes": remotes})})


def test_keys_are_stable_and_cascade(tmp_path: Path, served: Served) -> None:
    recipe = write_recipe(tmp_path / "r", served, hooks={"image/50-hello": "echo hello\n",
                                                         "image/60-bye": "echo bye\n"})
    base = stage_keys(_plan(recipe))
    assert base == stage_keys(_plan(recipe))
    assert len(set(base.values())) == 3
    apps = stage_key(_plan(recipe), "flatpak")[0]

    (tmp_path / "r" / "hooks" / "image" / "60-bye").write_text("echo goodbye\n")
    hook = stage_keys(_plan(recipe))
    assert stage_key(_plan(recipe), "flatpak")[0] == apps
    assert hook["ostree"] == base["ostree"]
    assert hook["image"] != base["image"]
    assert hook["manifest"] != base["manifest"]

    (tmp_path / "r" / "hooks" / "image" / "60-bye").write_text("echo bye\n")
    assert stage_keys(_plan(recipe)) == base

    section = stage_keys(_plan(recipe, "image.hostname=other"))
    assert section["ostree"] == base["ostree"]
    assert section["image"] != base["image"] and section["manifest"] != base["manifest"]

    commit = stage_keys(_plan(recipe).model_copy(
        update={"ostree": _plan(recipe).ostree.model_copy(update={"commit": OTHER})}))
    assert all(commit[s] != base[s] for s in base)

    pinned = _with_flatpak_commit(_plan(recipe), OTHER)
    pins = stage_keys(pinned)
    assert pins["ostree"] == base["ostree"] and pins["image"] != base["image"]
    assert stage_key(pinned, "flatpak")[0] != apps
    # The apps do not depend on the OS commit; the image does.
    other_os = _plan(recipe).model_copy(
        update={"ostree": _plan(recipe).ostree.model_copy(update={"commit": OTHER})})
    assert stage_key(other_os, "flatpak")[0] == apps
    assert stage_key(_plan(recipe, "flatpak.locales=[en]"), "flatpak")[0] != apps


def test_inputs_hold_what_the_stage_reads(tmp_path: Path, served: Served) -> None:
    recipe = write_recipe(tmp_path / "r", served)
    plan = _plan(recipe)
    key, inputs = stage_key(plan, "image")
    assert inputs["commit"] == COMMIT
    assert inputs["previous"] == stage_key(plan, "ostree")[0]
    assert inputs["hooks"]["image"][0]["name"] == "50-hello"
    assert inputs["hooks"]["image"][0]["sha256"] == plan.hooks_of("image")[0].sha256
    assert inputs["tools"]["mke2fs"].startswith("mke2fs ")
    assert inputs["tools"]["flatpak"].startswith("Flatpak ")
    assert "Version" in stage_key(plan, "ostree")[1]["tools"]["ostree"]
    assert len(key) == 64
    # An unpinned plan's image key follows the commit the ostree stage pulled.
    unpinned = compile_plan(CompileRequest(recipe, source_date_epoch=JAN_2024)).plan
    first, data = stage_key(unpinned, "image", {"commit": COMMIT})
    assert data["commit"] == COMMIT
    assert stage_key(unpinned, "image", {"commit": COMMIT})[0] == first
    assert stage_key(unpinned, "image", {"commit": OTHER})[0] != first


def _populate(cache: Path, plan: Plan, inputs: dict[str, object], tmp_path: Path) -> None:
    """Store every stage's result as a build would."""
    result = tmp_path / "result.txt"
    result.write_text("stage output\n")
    previous = ""
    for stage in ("ostree", "image", "manifest"):
        runtime = {**inputs, "previous": previous} if previous else dict(inputs)
        key, data = stage_key(plan, stage, runtime)
        store(cache, stage, key, data, {"result.txt": result})
        previous = key
    key, data = stage_key(plan, "flatpak", inputs)
    store(cache, "flatpak", key, data, {"result.txt": result})


def test_explain_names_the_changed_hook(tmp_path: Path, served: Served, locked: Locked) -> None:
    recipe = write_recipe(tmp_path / "r", served)
    lock = tmp_path / "r" / "recipe.lock"
    shutil.copy(locked.lock, lock)
    cache = tmp_path / "cache"
    plan, inputs = compile_plan(CompileRequest(recipe, lock=lock)).plan, {}
    assert plan.ostree.commit == served.rev_parse("os/repro/amd64/master")
    assert plan.build.build_version == "240101-000000"
    _populate(cache, plan, inputs, tmp_path)

    proc = eib("cache", "explain", recipe, "--lock", lock, "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" ")[:2] for line in lines[:4]] == [
        ["ostree:", "hit"], ["image:", "hit"], ["flatpak:", "hit"], ["manifest:", "hit"]]
    assert lines[4] == "publish: not cached (always runs)"

    old_sha = plan.hooks_of("image")[0].sha256
    (tmp_path / "r" / "hooks" / "image" / "50-hello").write_text("echo changed\n")
    proc = eib("cache", "explain", recipe, "--lock", lock, "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    new_plan = compile_plan(CompileRequest(recipe, lock=lock)).plan
    new_sha = new_plan.hooks_of("image")[0].sha256
    assert lines[0].startswith("ostree: hit")
    assert lines[1] == (f"image: miss — hooks.image[0].sha256 changed: {old_sha[:8]}… → "
                        f"{new_sha[:8]}… (hooks/image/50-hello)")
    assert lines[2].startswith("flatpak: hit")
    assert lines[3].startswith("manifest: miss — the image stage's key changed: ")


def test_explain_of_a_locked_recipe_uses_the_keys_a_locked_build_uses(
    tmp_path: Path, served: Served, locked: Locked
) -> None:
    """`cache explain --lock` compiles as `eib plan --lock` does: a cache filled from
    that plan (what `eib run --plan` and `eib run --lock` store) is all hits."""
    recipe = write_recipe(tmp_path / "r", served)
    lock = tmp_path / "r" / "recipe.lock"
    shutil.copy(locked.lock, lock)
    cache = tmp_path / "cache"
    proc = eib("plan", recipe, "--lock", lock, "--json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    plan = load_plan_json(proc.stdout)
    assert plan.flatpak.remotes["apps"].commits  # the lock pins the Flatpaks too
    _populate(cache, plan, {}, tmp_path)

    proc = eib("cache", "explain", recipe, "--lock", lock, "--cache-dir", cache, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert [line.split(" ")[:2] for line in proc.stdout.splitlines()] == [
        ["ostree:", "hit"], ["image:", "hit"], ["flatpak:", "hit"], ["manifest:", "hit"],
        ["publish:", "not"]]


def test_explain_without_lock_and_without_entries(tmp_path: Path, served: Served) -> None:
    recipe = write_recipe(tmp_path / "r", served)
    proc = eib("cache", "explain", recipe, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        "ostree: miss — the ref os/repro/amd64/master is not pinned (see `eib lock`)",
        "image: unknown until the ostree stage pulls os/repro/amd64/master "
        "(the commit is not pinned; see `eib lock`)",
    ]
    proc = eib("cache", "explain", recipe, "--set", f"ostree.commit={COMMIT}",
               "--cache-dir", tmp_path / "cache")
    assert proc.stdout.startswith("ostree: miss — no cached result of this stage")


def test_store_is_atomic_and_restores_exactly(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    src = tmp_path / "src"
    (src / "tree" / "sub").mkdir(parents=True)
    (src / "tree" / "sub" / "a.txt").write_text("a\n")
    (src / "tree" / "link").symlink_to("sub/a.txt")
    sparse = src / "disk.img"
    with sparse.open("wb") as f:
        f.truncate(64 << 20)
        f.write(b"boot")
    key = "1" * 64
    assert lookup(cache, "image", key) is None
    entry = store(cache, "image", key, {"stage": "image"},
                  {"disk.img": sparse, "tree": src / "tree"})
    assert [e.key for e in entries(cache)] == [key]
    assert not list((cache / "stages" / "image").glob(".tmp-*"))
    assert json.loads((entry.path / "inputs.json").read_text()) == {"stage": "image"}
    # Holes stay holes: 64 MiB apparent, a few KiB used.
    assert entry.file("disk.img").stat().st_size == 64 << 20
    assert entry.size() < 1 << 20

    os.utime(entry.path / "used", (1, 1))
    found = lookup(cache, "image", key)
    assert found is not None and found.last_used > time.time() - 60
    restore(found, "tree", tmp_path / "out" / "tree")
    restore(found, "disk.img", tmp_path / "out" / "disk.img")
    assert (tmp_path / "out" / "tree" / "sub" / "a.txt").read_text() == "a\n"
    assert os.readlink(tmp_path / "out" / "tree" / "link") == "sub/a.txt"
    assert (tmp_path / "out" / "disk.img").read_bytes()[:4] == b"boot"
    with pytest.raises(FileNotFoundError):
        restore(found, "nothing", tmp_path / "out" / "nothing")

    # A crashed store's temp dir is never an entry, and gc removes it.
    crashed = cache / "stages" / "image" / f".tmp-{'2' * 64}-999999999"
    (crashed / "files").mkdir(parents=True)
    (crashed / "inputs.json").write_text("{}")
    assert [e.key for e in entries(cache)] == [key]
    gc(cache, 1 << 30)
    assert not crashed.exists()


def test_gc_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(200 * 1024))
    keys = [str(i) * 64 for i in range(1, 4)]
    for index, key in enumerate(keys):
        entry = store(cache, "image", key, {"n": index}, {"blob": blob})
        os.utime(entry.path / "used", (1000 + index, 1000 + index))
    assert lookup(cache, "image", keys[0]) is not None  # used now: the newest

    listed = json.loads(eib("cache", "ls", "--json", "--cache-dir", cache).stdout)
    assert sorted(e["key"] for e in listed["entries"]) == sorted(keys)
    assert all(e["size"] >= 200 * 1024 for e in listed["entries"])
    human = eib("cache", "ls", "--cache-dir", cache)
    assert human.returncode == 0 and human.stdout.startswith("STAGE")
    assert "3 entries" in human.stdout

    proc = eib("cache", "gc", "--max-size", "450K", "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"evicted image {keys[1][:12]}"
    left = entries(cache)
    assert sorted(e.key for e in left) == sorted([keys[0], keys[2]])
    assert sum(e.size() for e in left) <= 450 * 1024

    proc = eib("cache", "gc", "--max-size", "0", "--cache-dir", cache)
    assert proc.returncode == 0
    assert entries(cache) == []

    bad = eib("cache", "gc", "--max-size", "lots", "--cache-dir", cache)
    assert bad.returncode == 2 and "not a size: 'lots'" in bad.stderr


def test_cached_stage_runs_once_and_restores(tmp_path: Path, served: Served) -> None:
    recipe = write_recipe(tmp_path / "r", served)
    plan = _plan(recipe)
    cache, out = tmp_path / "cache", tmp_path / "out"
    runs: list[int] = []

    def image_stage() -> None:
        runs.append(1)
        (out / "disk.img").write_text(f"image {len(runs)}\n")

    out.mkdir()
    (out / "build.txt").write_text("log of the first build\n")
    key, hit = cached_stage(cache, plan, "image", None, {"out": out}, image_stage,
                            skip=["build.txt"])
    assert (hit, runs) == (False, [1])
    stored = lookup(cache, "image", key)
    assert stored is not None and not stored.file("out/build.txt").exists()
    shutil.rmtree(out)
    out.mkdir()
    (out / "build.txt").write_text("log of this build\n")
    assert cached_stage(cache, plan, "image", None, {"out": out}, image_stage,
                        skip=["build.txt"]) == (key, True)
    assert runs == [1]
    assert (out / "disk.img").read_text() == "image 1\n"
    assert (out / "build.txt").read_text() == "log of this build\n"
    # A result whose outside dependency went away is rebuilt, under the same key.
    assert cached_stage(cache, plan, "image", None, {"out": out}, image_stage,
                        still_valid=lambda entry: False) == (key, False)
    assert runs == [1, 1]
    entry = lookup(cache, "image", key)
    assert entry is not None and entry.file("out/disk.img").read_text() == "image 2\n"


def test_gc_removes_buildroots_of_commits_the_cache_repo_pruned(tmp_path: Path) -> None:
    """A buildroot checkout is hard links of the cache repo's objects: once the repo has
    pruned its commit, only the checkout keeps that space taken."""
    cache = tmp_path / "cache"
    repo = cache / "ostree" / "repo"
    tree = tmp_path / "tree"
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "bash").write_text("#!/bin/true\n")
    repo.mkdir(parents=True)
    subprocess.run(["ostree", f"--repo={repo}", "init", "--mode=bare"], check=True)
    kept = subprocess.run(["ostree", f"--repo={repo}", "commit", "--branch=os/x",
                           f"--tree=dir={tree}"], check=True, capture_output=True,
                          text=True).stdout.strip()
    gone = "ef" * 32
    for name in (kept, gone, f".partial-{OTHER}"):
        checkout = cache / "buildroot" / name
        (checkout / "usr").mkdir(parents=True)
        (checkout / ".eib-buildroot-ready").touch()
    proc = eib("cache", "gc", "--max-size", "1G", "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()[:2]) == sorted(
        f"removed the buildroot of {c[:12]}, gone from the cache repo" for c in (gone, OTHER))
    assert [p.name for p in (cache / "buildroot").iterdir()] == [kept]
