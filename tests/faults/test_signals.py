# ruff: noqa: F811  (test arguments named after the fixtures imported below)
"""Signals stop eib at once and cleanly; a silent network never hangs a build;
an interrupted re-publish keeps what was published before.

Everything is real: `eib run`, `eib publish` and `eib boot` as subprocesses,
ostree pulling from misbehaving servers on 127.0.0.1, moto as the S3 server,
QEMU booting the demo image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from disk.conftest import demo_paths  # noqa: F401  (fixtures reused, not rebuilt)
from disk.test_boot import demo_image  # noqa: F401
from execute.conftest import Build, Served, Signing, build, eib_env, signing, write_recipe  # noqa: F401
from publish.conftest import OUTVERSION, PUBLISH_PATH, make_plan

from eib.model.recipe import LocalTarget as LocalSettings
from eib.model.recipe import S3Target as S3Settings
from eib.publish.local import LocalTarget
from eib.publish.targets import ProgressMeter, PublishFile
from tests.loopback import moto_server

from .servers import stalled_server, trickling_server, wait_for

EIB = [sys.executable, "-m", "eib.cli"]
MiB = 1024 * 1024


# --- helpers -------------------------------------------------------------------------------


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
        if text in cmdline and state != "Z":
            found.append((int(entry), cmdline))
    return found


def recipe_at(build: Build, url: str, signing: Signing, retries: int = 3) -> Path:
    """The executor tests' recipe, its OS pulled from `url`."""
    served = Served(url, build.top, "", "")
    path = write_recipe(build.recipe.parent, served, signing)
    text = path.read_text().replace("pull_retries: 0", f"pull_retries: {retries}")
    path.write_text(text)
    return path


def start_run(build: Build, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(build.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**eib_env(), **env})


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the network never hangs a build ---------------------------------------------------------


@pytest.mark.parametrize("server", ["stalled", "trickling"])
def test_a_silent_server_fails_the_pull_within_the_stall_timeout(
    build: Build, signing: Signing, server: str
) -> None:
    """No answer, or a byte every 3 s: with a 2 s stall timeout and two retries,
    the build fails after about 3 × 2 s + backoff, naming the stall."""
    make = stalled_server() if server == "stalled" else trickling_server(interval=3)
    with make as url:
        recipe_at(build, url, signing, retries=2)
        started = time.monotonic()
        proc = start_run(build, EIB_NETWORK_STALL_TIMEOUT="2")
        _, stderr = finish(proc, timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("eib: build failed: ostree/pull: pulling ")
    assert lines[0].endswith("stalled: no progress for 2 s (EIB_NETWORK_STALL_TIMEOUT=2)")
    assert elapsed < 40
    log = (build.out / "build.txt").read_text()
    assert "pull attempt 1/3 failed" in log and "retrying in 1 s" in log
    assert "pull attempt 2/3 failed" in log and "retrying in 2 s" in log
    assert not processes_mentioning(str(build.cache))


def test_a_trickle_ends_at_the_network_deadline(build: Build, signing: Signing) -> None:
    """A server fast enough for the stall timeout still cannot hold the build past the
    deadline, and a pull past its deadline is not retried."""
    with trickling_server(interval=0.5) as url:
        recipe_at(build, url, signing, retries=3)
        started = time.monotonic()
        proc = start_run(build, EIB_NETWORK_STALL_TIMEOUT="60", EIB_NETWORK_DEADLINE="4")
        _, stderr = finish(proc, timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1, stderr
    assert stderr.strip().splitlines() == [
        "eib: build failed: ostree/pull: pulling 'os/eibtest/amd64/master' from remote "
        "'eibtest' did not finish within 4 s (EIB_NETWORK_DEADLINE=4)"
    ]
    assert elapsed < 30
    assert "retrying" not in (build.out / "build.txt").read_text()
    assert not processes_mentioning(str(build.cache))


def test_a_bad_limit_is_bad_input(build: Build, signing: Signing) -> None:
    with stalled_server() as url:
        recipe_at(build, url, signing)
        proc = start_run(build, EIB_NETWORK_STALL_TIMEOUT="soon")
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 2
    assert stderr == ("eib: error: EIB_NETWORK_STALL_TIMEOUT: must be a number of seconds "
                      "(0: no limit), not 'soon'\n")


# --- signals stop a build at once ------------------------------------------------------------


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_ostree_pull_stops_the_build_at_once(
    build: Build, signing: Signing, sig: signal.Signals, status: int
) -> None:
    with stalled_server() as url:
        recipe_at(build, url, signing, retries=3)
        proc = start_run(build, EIB_NETWORK_STALL_TIMEOUT="300")
        try:
            pulling = wait_for(lambda: any(
                " pull " in cmd for _, cmd in processes_mentioning(str(build.cache))), 60)
            assert pulling, "the build never reached ostree pull"
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(sig)
        finally:
            _, stderr = finish(proc, timeout=60)
        took = time.monotonic() - sent
    assert proc.returncode == status, stderr
    assert stderr == "eib: interrupted during ostree/pull\n"
    assert took < 10  # once: no retry, no second signal needed
    log = (build.out / "build.txt").read_text()
    assert "retrying" not in log
    assert f"interrupted during ostree/pull ({sig.name})" in log
    assert not processes_mentioning(str(build.cache))


# --- an interrupted re-publish keeps the published build ----------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def s3_client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def s3_objects(client: Any, bucket: str) -> dict[str, str]:
    """key → ETag of everything in the bucket."""
    found: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return found


def tree_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def big_output(tmp_path: Path) -> Path:
    """A finished build's output dir whose image takes S3 a few seconds to take."""
    out = tmp_path / "out"
    out.mkdir()
    with (out / f"{OUTVERSION}.img.gz").open("wb") as f:
        for _ in range(160):
            f.write(os.urandom(MiB))
    (out / f"{OUTVERSION}.manifest.json").write_text('{"version": 1}\n')
    (out / "build.txt").write_text("build log\n")
    return out


def run_publish(output: Path, cache: Path) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("EIB_", "AWS_"))},
           **AWS_ENV, "EIB_CACHE_DIR": str(cache)}
    return subprocess.Popen([*EIB, "publish", str(output)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_sigint_during_a_republish_keeps_the_published_build(
    tmp_path: Path, moto: str, big_output: Path
) -> None:
    client = s3_client(moto)
    bucket = "eib-faults-republish"
    client.create_bucket(Bucket=bucket)
    www = tmp_path / "www"
    plan = make_plan([LocalSettings(kind="local", path=str(www)),
                      S3Settings(kind="s3", bucket=bucket, endpoint_url=moto,
                                 region="us-east-1")], tmp_path / "cache")
    (big_output / f"{OUTVERSION}.plan.json").write_text(plan.to_json())
    first = run_publish(big_output, tmp_path / "cache")
    _, stderr = finish(first, timeout=300)
    assert first.returncode == 0, stderr
    published_s3 = s3_objects(client, bucket)
    published_local = tree_digests(www)
    assert f"{PUBLISH_PATH}/{OUTVERSION}.img.gz" in published_s3
    assert f"{PUBLISH_PATH}/{OUTVERSION}.img.gz" in published_local

    again = run_publish(big_output, tmp_path / "cache")
    try:
        # In the middle of the S3 upload: the local copy is made, the image goes up in parts.
        assert wait_for(lambda: bool(client.list_multipart_uploads(Bucket=bucket)
                                     .get("Uploads")), 120, step=0.05)
        again.send_signal(signal.SIGINT)
    finally:
        _, stderr = finish(again, timeout=120)
    assert again.returncode == 130, stderr
    assert stderr == "eib: interrupted during publish/s3\n"
    assert s3_objects(client, bucket) == published_s3
    assert tree_digests(www) == published_local
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_local_target_undone_after_its_swap_restores_the_build_before(tmp_path: Path) -> None:
    """Another target failing (or a signal) after the local swap puts the old build back."""
    root = tmp_path / "www"
    old = root / "nightly" / "b1"
    old.mkdir(parents=True)
    (old / "image.img").write_text("published before\n")
    source = tmp_path / "image.img"
    source.write_text("published again\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = LocalTarget(LocalSettings(kind="local", path=str(root)), "nightly/b1")
    target.begin()
    target.upload([PublishFile("image.img", source, source.stat().st_size, digest)],
                  ProgressMeter(target.location, source.stat().st_size, None))
    target.finish()
    assert (old / "image.img").read_text() == "published again\n"
    target.abort()
    target.close()
    assert (old / "image.img").read_text() == "published before\n"
    assert sorted(p.name for p in (root / "nightly").iterdir()) == ["b1"]


# --- eib boot leaves nothing behind ----------------------------------------------------------


@pytest.mark.boot
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu")
def test_sigterm_during_boot_kills_qemu_and_removes_the_raw_copy(
    demo_image: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen([*EIB, "boot", str(demo_image), "--timeout", "300",
                             "--log", str(tmp_path / "console.log")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        running = wait_for(lambda: any(
            "qemu-system" in cmd for _, cmd in processes_mentioning(str(scratch))), 120)
        assert running, "QEMU never started"
        proc.send_signal(signal.SIGTERM)
    finally:
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr == "eib: interrupted during boot\n"
    assert not processes_mentioning(str(scratch))
    assert list(scratch.iterdir()) == []
