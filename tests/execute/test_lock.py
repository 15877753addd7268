"""Two `eib run` on one cache dir: the second waits for, or fails on, the lock."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .conftest import Build, Served, Signing, eib_env, write_hook, write_recipe


def _wait_for(predicate: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_concurrent_runs_on_one_cache(
    build: Build, served: Served, signing: Signing, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    write_hook(build.recipe.parent, "content", "10-hold", f"""
        touch {started}
        while [ ! -e {release} ]; do sleep 0.1; done
    """)
    write_recipe(build.recipe.parent, served, signing, hooks={"content": ["10-hold"]})

    def argv(name: str, *extra: str) -> list[str]:
        other = Build(tmp_path / name, build.recipe)
        args = other.argv("--stages", "ostree,image", *extra)
        # every run shares the first build's cache dir
        args[args.index("--cache-dir") + 1] = str(build.cache)
        return args

    first_log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(argv("first"), stdout=first_log, stderr=subprocess.STDOUT,
                             env=eib_env())
    waiting_log = (tmp_path / "waiting.log").open("w")
    waiting: subprocess.Popen[bytes] | None = None
    try:
        _wait_for(started.exists)
        assert (build.cache / "lock").read_text().strip() == str(first.pid)

        refused = subprocess.run(argv("second", "--lock-timeout", "0"), capture_output=True,
                                 text=True, env=eib_env(), timeout=60, check=False)
        assert refused.returncode == 1
        assert (f"cache dir {build.cache} is locked by another eib run (pid {first.pid})"
                in refused.stderr)
        assert not (tmp_path / "second" / "out" / "build.txt").exists()

        waiting = subprocess.Popen(argv("third"), stdout=waiting_log,
                                   stderr=subprocess.STDOUT, env=eib_env())
        _wait_for(lambda: "waiting for the lock" in (tmp_path / "waiting.log").read_text())
        assert f"held by pid {first.pid}" in (tmp_path / "waiting.log").read_text()
        assert waiting.poll() is None
    finally:
        release.touch()
        first_status = first.wait(timeout=120)
        waiting_status = waiting.wait(timeout=120) if waiting else None
        first_log.close()
        waiting_log.close()
    assert first_status == 0, (tmp_path / "first.log").read_text()
    assert waiting_status == 0, (tmp_path / "waiting.log").read_text()
    fsck = subprocess.run(["ostree", "fsck", f"--repo={build.cache}/ostree/repo"],
                          capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr
    for name in ("first", "third"):
        deploy = tmp_path / name / "work" / "sysroot" / "ostree" / "deploy" / "eibtest" / "deploy"
        assert (deploy / f"{served.good_commit}.0").is_dir()
