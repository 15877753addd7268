# ruff: noqa: F811  (test arguments named after the fixtures imported below)
"""What a SIGKILLed build or publish leaves is reclaimed by the next one.

Real `eib run` processes killed with SIGKILL while a hook runs (the tiny
OSTree OS of the executor tests, served on 127.0.0.1), real mounts, moto as
the S3 server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from execute.conftest import (  # noqa: F401  (fixtures reused, not rebuilt)
    Build,
    Served,
    Signing,
    eib_env,
    mounts_under,
    served,
    signing,
    write_hook,
    write_recipe,
)
from publish.conftest import FAST, moto_url  # noqa: F401

from eib.model.recipe import LocalTarget as LocalSettings
from eib.model.recipe import S3Target as S3Settings
from eib.publish import s3_stale
from eib.publish.local import LocalTarget
from eib.publish.s3 import S3Target
from eib.publish.targets import MARKER, ProgressMeter, PublishFile
from eib.tools.owned import alive, identity


def wait_for(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False

def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"

def dead_identity() -> str:
    """The identity of a process that has ended."""
    proc = subprocess.Popen(["sleep", "30"])
    ident = identity(proc.pid)
    proc.kill()
    proc.wait()
    return ident

class Site:
    """Two work dirs (`a`, `b`) sharing one cache and one registry of running builds."""

    def __init__(self, top: Path, served: Served, signing: Signing) -> None:
        self.top, self.served, self.signing = top, served, signing
        self.pids = top / "pids"
        self.env = {**eib_env(), "EIB_RUN_DIR": str(top / "run")}

    def build(self, name: str) -> Build:
        return Build(self.top / name, self.top / "recipe" / "recipe.yaml")

    def recipe(self, hooks: dict[str, list[str]]) -> None:
        write_recipe(self.top / "recipe", self.served, self.signing, hooks=hooks)

    def argv(self, build: Build) -> list[str]:
        return build.argv()

    def start(self, build: Build) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(build), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def run(self, build: Build) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(build), capture_output=True, text=True, env=self.env,
                              timeout=180, check=False)

    def recorded_pids(self) -> list[int]:
        if not self.pids.exists():
            return []
        return [int(line) for line in self.pids.read_text().split() if line.isdigit()]

@pytest.fixture
def site(tmp_path: Path, served: Served, signing: Signing) -> Iterator[Site]:
    s = Site(tmp_path, served, signing)
    yield s
    # Whatever a failed test left: processes, mounts, immutable dirs.
    for pid in s.recorded_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for target in mounts_under(tmp_path):
        subprocess.run(["umount", "-l", target], check=False)
    subprocess.run(["chattr", "-R", "-f", "-i", str(tmp_path)], capture_output=True, check=False)

def kill_when(proc: subprocess.Popen[str], ready: object, timeout: float = 120) -> None:
    try:
        assert wait_for(lambda: ready() or proc.poll() is not None, timeout)  # type: ignore[operator]
        assert proc.poll() is None, proc.communicate()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()

# --- processes ---------------------------------------------------------------------------

@pytest.mark.parametrize("next_work", ["same", "other"])
def test_a_killed_builds_hook_processes_are_ended_by_the_next_run(
    site: Site, next_work: str
) -> None:
    """A host-side hook leaves a `setsid` loop writing into the output dir and a sleep in
    its own group; after the SIGKILL they live on, and the next run (of the same or of
    another work dir) ends them before they write into its output."""
    ready = site.top / "ready"
    write_hook(site.top / "recipe", "image", "60-spawn", f"""
        setsid sh -c 'while :; do mkdir -p "$0"; echo tick >> "$0/leftover"; sleep 0.2; done' \\
            "$EIB_OUTDIR" </dev/null >/dev/null 2>&1 &
        echo $! >> {site.pids}
        sleep 600 </dev/null >/dev/null 2>&1 &
        echo $! >> {site.pids}
        echo $$ >> {site.pids}
        touch {ready}
        wait
        """)
    site.recipe({"image": ["60-spawn"]})
    first = site.build("a")
    kill_when(site.start(first), ready.exists)
    grandchild, sleeper, hook = site.recorded_pids()
    assert wait_for(lambda: not running(hook), 5), "the hook itself dies with eib"
    assert running(grandchild) and running(sleeper), "the fault this test is about"
    assert wait_for(lambda: list(first.out.glob(".eib-new-*/leftover")), 5)

    ready.unlink()
    site.recipe({})
    second = first if next_work == "same" else site.build("b")
    result = site.run(second)
    assert result.returncode == 0, result.stderr
    assert not running(grandchild) and not running(sleeper)
    time.sleep(0.5)
    assert not list(second.out.rglob("leftover"))
    assert not list(second.out.glob(".eib-new-*"))
    assert (second.out / "build.txt").is_file()
    assert not list((site.top / "run" / "builds").iterdir()), "registry entries are removed"

def test_a_finished_build_leaves_no_hook_process_running(site: Site) -> None:
    """A daemon a hook started in its own session ends with the build."""
    write_hook(site.top / "recipe", "image", "60-daemon", f"""
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        echo $! >> {site.pids}
        """)
    site.recipe({"image": ["60-daemon"]})
    result = site.run(site.build("a"))
    assert result.returncode == 0, result.stderr
    (daemon,) = site.recorded_pids()
    assert wait_for(lambda: not running(daemon), 5)

# --- mounts ------------------------------------------------------------------------------

def test_a_killed_chroot_hooks_mounts_are_detached_by_a_run_of_another_work_dir(
    site: Site,
) -> None:
    write_hook(site.top / "recipe", "image", "60-block.chroot", """
        echo ready > /var/eib-ready
        exec sleep 600
        """)
    site.recipe({"image": ["60-block.chroot"]})
    first = site.build("a")
    var = first.work / "sysroot" / "ostree" / "deploy" / "eibtest" / "var"
    kill_when(site.start(first), (var / "eib-ready").exists)
    left = mounts_under(first.work)
    # The chroot's own: /proc, /sys, /dev, /dev/pts, the group's /tmp, the cache and
    # source dirs inside it, ...
    names = {t.rsplit(".0/", 1)[-1] for t in left}
    assert {"proc", "sys", "dev", "dev/pts", "tmp"} <= names, left

    site.recipe({})
    result = site.run(site.build("b"))
    assert result.returncode == 0, result.stderr
    assert mounts_under(first.work) == []
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert Path("/dev/pts").is_dir() and Path("/dev/zero").exists()
    assert not list((site.top / "run" / "builds").iterdir())

# --- publishing --------------------------------------------------------------------------

def publish_one(target: LocalTarget | S3Target, tmp_path: Path) -> None:
    source = tmp_path / "image.img"
    source.write_text("the image\n")

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    size = source.stat().st_size
    target.begin()
    target.upload([PublishFile("image.img", source, size, digest)],
                  ProgressMeter(target.location, size, None))
    target.finish()
    target.close()

def test_a_killed_local_publishs_hidden_dirs_are_removed_by_the_next_publish(
    tmp_path: Path,
) -> None:
    root = tmp_path / "www"
    parent = root / "nightly"
    parent.mkdir(parents=True)
    stale = parent / f".b1.inprogress-{dead_identity()}-abc123"
    stale.mkdir()
    (stale / "image.img").write_text("half a build\n")
    live = parent / f".b1.inprogress-{identity(os.getpid())}-def456"
    live.mkdir()
    publish_one(LocalTarget(LocalSettings(kind="local", path=str(root)), "nightly/b1"), tmp_path)
    assert sorted(p.name for p in parent.iterdir()) == [live.name, "b1"]
    assert (parent / "b1" / "image.img").read_text() == "the image\n"

def test_a_build_set_aside_by_a_killed_publish_is_put_back(tmp_path: Path) -> None:
    parent = tmp_path / "www" / "nightly"
    aside = parent / f".b1.old-{dead_identity()}-abc123"
    (aside / "old").mkdir(parents=True)
    (aside / "old" / "image.img").write_text("published before\n")
    target = LocalTarget(LocalSettings(kind="local", path=str(tmp_path / "www")), "nightly/b1")
    target.begin()
    assert (parent / "b1" / "image.img").read_text() == "published before\n"
    target.abort()
    assert sorted(p.name for p in parent.iterdir()) == ["b1"]

@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

def _marker_body(owner: str) -> bytes:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return json.dumps({"host": socket.gethostname(), "boot": boot, "owner": owner}).encode()

@pytest.mark.parametrize("owner", ["gone", "running"])
def test_a_killed_publishs_multipart_upload_is_aborted_by_the_next_publish(
    tmp_path: Path, moto_url: str, s3_env: None, owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto dates every upload 2010-11-10: only the owner may decide here, not the age.
    monkeypatch.setattr(s3_stale, "STALE_UPLOAD_SECONDS", 100 * 365 * 86400)
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"eib-reclaim-{owner}"
    client.create_bucket(Bucket=bucket)
    prefix = "nightly/b1"
    upload = client.create_multipart_upload(Bucket=bucket, Key=f"{prefix}/big.img")
    client.upload_part(Bucket=bucket, Key=f"{prefix}/big.img", UploadId=upload["UploadId"],
                       PartNumber=1, Body=b"x" * 1024)
    other = client.create_multipart_upload(Bucket=bucket, Key="nightly/b2/big.img")
    holder = dead_identity() if owner == "gone" else identity(os.getpid())
    client.put_object(Bucket=bucket, Key=f"{prefix}/{MARKER}", Body=_marker_body(holder))

    settings = S3Settings(kind="s3", bucket=bucket, endpoint_url=moto_url, region="us-east-1")
    target = S3Target(settings, prefix, {}, tmp_path, FAST, key="publish.targets[0]")
    publish_one(target, tmp_path)
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket)
            .get("Uploads", [])}
    if owner == "gone":
        assert left == {other["UploadId"]}, "only this prefix's stale upload is aborted"
    else:
        assert left == {upload["UploadId"], other["UploadId"]}, "a live publish's is kept"
    assert alive(identity(os.getpid()))
