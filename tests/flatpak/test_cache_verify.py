"""The Flatpak content cache checks objects against their names before serving them again."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from eib.compile.compiler import compile_recipe
from eib.flatpak.install import install_flatpaks

if TYPE_CHECKING:
    from .conftest import Repos, Server

ONE_APP = """
remotes:
  main:
    url: "{url}/main"
    gpg_key: "{key}"
    default_branch: stable
    apps: [org.eib.Hello]
"""


def test_corrupt_cache_entries_are_dropped_and_fetched_again(
    recipe: Callable[[str], Path],
    deployment: Callable[[str], Path],
    server: Server,
    repos: Repos,
    tmp_path: Path,
    flatpak_cmd: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    plan = compile_recipe(recipe(ONE_APP), {}).plan
    cache = tmp_path / "cache"
    install_flatpaks(plan, deployment("sysroot"), cache, tmp_path / "m1")
    objects = cache / "flatpak" / "objects"
    cached = {p.relative_to(cache / "flatpak").as_posix(): p
              for p in objects.rglob("*") if p.is_file()}
    filez = sorted(rel for rel in cached if rel.endswith(".filez"))
    dirtree = sorted(rel for rel in cached if rel.endswith(".dirtree"))
    upstream = Path(repos.main)
    assert filez and dirtree
    assert all(path.read_bytes() == (upstream / rel).read_bytes() for rel, path in cached.items())

    # A disk error, an interrupted copy, someone editing the cache:
    bad = [filez[0], filez[-1], dirtree[0]]
    cached[bad[0]].write_bytes(cached[bad[0]].read_bytes()[:-7])
    cached[bad[1]].write_bytes(b"not an object\n")
    cached[bad[2]].write_bytes(cached[bad[2]].read_bytes() + b"\0")
    mark = server.mark()
    dep = deployment("sysroot2")
    install_flatpaks(plan, dep, cache, tmp_path / "m2")
    fetched = sorted(p.split("/main/", 1)[1] for p in server.since(mark)
                     if "/objects/" in p and not p.endswith(".commitmeta"))
    assert fetched == sorted(bad)
    assert all(cached[rel].read_bytes() == (upstream / rel).read_bytes() for rel in bad)
    system_dir = dep.parents[1] / "var" / "lib" / "flatpak"
    ran = flatpak_cmd(system_dir, "run", "--system", "org.eib.Hello")
    assert ran.returncode == 0, ran.stderr


def test_every_object_of_a_real_repo_verifies_and_a_changed_one_does_not(
    repos: Repos, tmp_path: Path
) -> None:
    from eib.flatpak.objects import verifiable, verify

    root = Path(repos.main)
    checked = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and verifiable(rel):
            assert verify(rel, path), rel
            changed = tmp_path / "changed"
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0x01
            changed.write_bytes(bytes(data))
            assert not verify(rel, changed), rel
            checked += 1
    kinds = {p.suffix for p in (root / "objects").rglob("*") if verifiable(
        p.relative_to(root).as_posix())}
    assert {".commit", ".dirtree", ".dirmeta", ".filez"} <= kinds and checked > 20
