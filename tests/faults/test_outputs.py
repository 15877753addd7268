"""Failed builds never look complete, the previous build is safe, dirs are locked
and the first error is the one reported: real demo builds into a real tmpfs
output dir (a full disk is a full disk), a failing manifest hook, a SIGKILL
during compression and a held lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eib.execute.scratch import host_temp_root
from eib.paths import RECIPES_DIR
from tests.loopback import free_port

EIB = [sys.executable, "-m", "eib.cli"]
# The demo OS is built once per machine and shared (see tests/integration).
DEMO_DIR = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache")) / "run-cache" / "demo"
IMAGE_SUFFIXES = (".img.zst", ".img.zst.sha256", ".img.sha256", ".img.zst.size")


def eib_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    env["EIB_DEMO_DIR"] = str(DEMO_DIR)
    return env


def digests(directory: Path) -> dict[str, str]:
    """Every visible file below `directory` → its sha256."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.relative_to(directory).as_posix().startswith(".")
    }


@dataclass
class Site:
    """A finished previous build in a tmpfs output dir, and how to build again there."""

    top: Path
    cache: Path
    work: Path
    out: Path
    port: int
    previous: dict[str, str]

    def recipe(self, name: str, hooks: dict[str, str] | None = None) -> Path:
        """A recipe extending the demo; `hooks` maps `group/name` to a hook's text."""
        root = self.top / name
        groups: dict[str, list[str]] = {"image": ["50-hostname", "50-timezone", "50-language",
                                                  "70-ostree-manifest"]}
        for where, text in (hooks or {}).items():
            group, hook = where.split("/")
            (root / "hooks" / group).mkdir(parents=True, exist_ok=True)
            (root / "hooks" / group / hook).write_text(text)
            groups.setdefault(group, []).append(hook)
        listed = ", ".join(f"{g}: [{', '.join(h)}]" for g, h in groups.items())
        root.mkdir(parents=True, exist_ok=True)
        path = root / "recipe.yaml"
        path.write_text(f"eib: 1\nextends: [{RECIPES_DIR / 'demo.yaml'}]\nhooks: {{{listed}}}\n")
        return path

    def argv(self, recipe: Path, *extra: str | Path) -> list[str]:
        return [*EIB, "run", str(recipe), "--set", f"demo.port={self.port}", "--progress",
                "plain", "--cache-dir", str(self.cache), "--work-dir", str(self.work),
                "--output-dir", str(self.out), *map(str, extra)]

    def run(self, recipe: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(recipe, *extra), capture_output=True, text=True,
                              env=eib_env(), timeout=900, check=False)

    def final_image_names(self) -> list[str]:
        return sorted(p.name for p in self.out.iterdir() if p.name.endswith(IMAGE_SUFFIXES))


def _remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    top = tmp_path_factory.mktemp("faults")
    out = top / "out"
    out.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "eib-faults", str(out)],
                   check=True)
    try:
        made = Site(top, top / "cache", top / "work", out, free_port(), {})
        proc = made.run(made.recipe("plain"))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        made.previous = digests(out)
        assert len(made.final_image_names()) == 4, made.previous
        yield made
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)
        _remove(top / "work")


def assert_previous_intact(site: Site) -> None:
    now = digests(site.out)
    kept = {name: digest for name, digest in now.items() if not name.startswith("failed/")}
    assert kept == site.previous


def test_a_failing_manifest_hook_keeps_the_previous_build_and_leaves_no_image_set(
    site: Site,
) -> None:
    recipe = site.recipe("failing", {"manifest/10-fail": "echo 'no manifest today'\nexit 4\n"})
    proc = site.run(recipe)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "eib: build failed: manifest/hook 10-fail: hook manifest/10-fail exited with "
        "status 4; last output: no manifest today")
    assert_previous_intact(site)
    failed = site.out / "failed"
    assert sorted(p.name for p in failed.iterdir()) == ["FAILED", "build.txt"]
    assert "hook manifest/10-fail exited with status 4" in (failed / "FAILED").read_text()
    assert "[manifest/10-fail] no manifest today" in (failed / "build.txt").read_text()
    assert not [p for p in site.out.iterdir() if p.name.startswith(".eib-")]


def test_a_build_killed_while_compressing_leaves_nothing_under_final_names(site: Site) -> None:
    log = (site.top / "killed.log").open("w")
    proc = subprocess.Popen(site.argv(site.recipe("plain"), "--no-cache"),
                            stdout=subprocess.DEVNULL, stderr=log, env=eib_env())
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in site.out.glob(".eib-new-*/*.img.zst") if p.stat().st_size]
            if partial:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (site.top / "killed.log").read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert_previous_intact(site)
    # The killed build's staging dir is reclaimed by the next run (the next test).
    assert [p.name for p in site.out.glob(".eib-new-*")] == [f".eib-new-{proc.pid}"]
    assert site.final_image_names() == sorted(n for n in site.previous if "/" not in n
                                              and n.endswith(IMAGE_SUFFIXES))


def test_a_full_output_disk_is_reported_as_such_and_keeps_the_previous_build(
    site: Site,
) -> None:
    # What a build killed mid-publish would leave among its temporaries (a copy of
    # credentials): builds keep them in a dir of their own, and the next one reclaims it.
    stale = host_temp_root() / "99999999.1" / "eib-publish-stale"
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "credentials").write_text("[default]\n")
    # Room for 4 MiB beyond the previous build (the demo image is ~13 MB). The run
    # reclaims the killed build's staging dir first: its files are emptied here so
    # what that frees does not depend on how far the killed build got.
    for partial in site.out.glob(".eib-new-*/**/*"):
        if partial.is_file():
            os.truncate(partial, 0)
    used = shutil.disk_usage(site.out).used
    subprocess.run(["mount", "-o", f"remount,size={used + (4 << 20)}", str(site.out)],
                   check=True)
    try:
        proc = site.run(site.recipe("plain"), "--no-cache")
    finally:
        subprocess.run(["mount", "-o", "remount,size=64m", str(site.out)], check=True)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"eib: build failed: image/disk: no space left on {site.out} "
                           "(writing eib-demo-"), proc.stderr[-3000:]
    assert "exited with -9" not in proc.stderr and "Traceback" not in proc.stderr
    assert_previous_intact(site)
    assert sorted(p.name for p in (site.out / "failed").iterdir()) == ["FAILED", "build.txt"]
    assert "no space left on" in (site.out / "failed" / "FAILED").read_text()
    assert not stale.exists()
    # The staging dir of the build killed in the previous test was reclaimed.
    assert not [p for p in site.out.iterdir() if p.name.startswith(".eib-")]


def test_a_locked_work_or_output_dir_is_named_with_its_holder(site: Site,
                                                              tmp_path: Path) -> None:
    recipe = site.recipe("plain")
    for held, what, option in ((site.work, "work dir", "--work-dir"),
                               (site.out, "output dir", "--output-dir")):
        fd = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Another cache: only the shared work or output dir is in the way.
            proc = site.run(recipe, "--lock-timeout", "0", "--cache-dir", tmp_path / "cache")
        finally:
            os.close(fd)
        assert proc.returncode == 1
        assert proc.stderr.strip() == (
            f"eib: build failed: lock: {what} {held} is in use by another eib run "
            f"(pid {os.getpid()}); wait for it or use another {option}")
    assert_previous_intact(site)
