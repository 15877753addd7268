"""The farm end to end: real workers build the demo from a real Redis into a
real S3 server, survive a worker killed mid-build, never publish a plan
twice, keep arm64 plans for arm64 workers and report failures with their log.

The module's workers are two amd64 workers on this host (separate dirs, one
shared demo server); builds of the demo take 10-30 s each here.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.farm.conftest import EIB, Farm, list_keys, versions

PERSONALITIES = ("base", "pt", "es", "fr")
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class MatrixRun:
    returncode: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]]
    killed: str
    killed_task: str


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def matrix_run(farm: Farm) -> MatrixRun:
    """Four variants on two workers; one worker dies mid-build and a fresh one joins."""
    farm.start_worker("w1")
    farm.start_worker("w2")
    submit = subprocess.Popen(
        [*EIB, "farm", "submit", str(farm.recipe), "--broker", farm.broker, "--wait",
         "--timeout", "600", "--json", "--matrix", "personality=" + ",".join(PERSONALITIES)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=farm.env(),
    )

    def building_on_w1() -> dict[str, Any] | None:
        running = farm.status()["running"]
        return next((t for t in running if t["worker"].startswith("w1@")
                     and t["stage"] in ("ostree", "image")), None)

    try:
        victim = wait_for(building_on_w1, 180, "a build under way on w1")
    except AssertionError as err:
        submit.kill()
        logs = "\n".join(w.log.read_text()[-3000:] for w in farm.workers.values())
        raise AssertionError(f"{err}\n{farm.status()}\n{logs}") from None
    farm.kill("w1")
    farm.start_worker("w3")
    stdout, stderr = submit.communicate(timeout=600)
    return MatrixRun(submit.returncode, stdout, stderr, json.loads(stdout or "[]"), "w1",
                     victim["task_id"])


def test_every_variant_is_built_once_despite_a_killed_worker(
    farm: Farm, matrix_run: MatrixRun
) -> None:
    assert matrix_run.returncode == 0, matrix_run.stderr[-3000:]
    results = {r["variant"].rsplit("-", 1)[1]: r for r in matrix_run.results}
    assert sorted(results) == sorted(PERSONALITIES)
    assert all(r["status"] == "built" for r in results.values()), matrix_run.results
    # The task of the killed worker was delivered again and built elsewhere, from scratch.
    victim = next(r for r in matrix_run.results if r["task_id"] == matrix_run.killed_task)
    assert not victim["worker"].startswith("w1@")
    assert set(victim["stages"]) == {"ostree", "image", "manifest", "publish"}

    keys = list_keys(farm.s3_url, farm.bucket)
    assert not [k for k in keys if k.endswith("/.inprogress")]
    markers = [k for k in keys if k.startswith(".eib-builds/")]
    assert len(markers) == 4
    for result in matrix_run.results:
        outversion = result["outversion"]
        image = next(o for o in result["outputs"] if o["name"] == f"{outversion}.img.zst")
        url = image["urls"][0]
        assert url.startswith(f"s3://{farm.bucket}/nightly/eib-demo-amd64-amd64/master/")
        key = url.removeprefix(f"s3://{farm.bucket}/")
        # Published exactly once: one version of the image, of the manifest, of the marker.
        assert versions(farm.s3_url, farm.bucket, key) == 1
        prefix = key.rsplit("/", 1)[0]
        assert versions(farm.s3_url, farm.bucket, f"{prefix}/{outversion}.manifest.json") == 1
        assert f"{prefix}/build.txt" in keys  # the full build log goes with the outputs
        digest = result["digest"].removeprefix("sha256:")
        assert versions(farm.s3_url, farm.bucket, f".eib-builds/{digest}.json") == 1
        assert set(result["stages"]) == {"ostree", "image", "manifest", "publish"}


def test_a_second_submit_of_the_same_plans_finds_them_built(
    farm: Farm, matrix_run: MatrixRun
) -> None:
    assert matrix_run.returncode == 0
    before = list_keys(farm.s3_url, farm.bucket)
    proc = farm.submit("--wait", "--timeout", "120", "--json",
                       "--matrix", "personality=" + ",".join(PERSONALITIES))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert [r["status"] for r in results] == ["already-built"] * 4
    first = {r["digest"]: r["worker"] for r in matrix_run.results}
    assert {r["digest"]: r["built_by"] for r in results} == first
    assert list_keys(farm.s3_url, farm.bucket) == before


def test_the_same_plan_submitted_twice_at_once_is_published_once(
    farm: Farm, matrix_run: MatrixRun
) -> None:
    argv = [*EIB, "farm", "submit", str(farm.recipe), "--broker", farm.broker, "-P", "twice",
            "--wait", "--timeout", "300", "--json"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=farm.env()) for _ in range(2)]
    outputs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    results = [json.loads(out)[0] for out, _ in outputs]
    assert sorted(r["status"] for r in results) == ["already-built", "built"]
    built = next(r for r in results if r["status"] == "built")
    image = next(o for o in built["outputs"] if o["name"].endswith(".img.zst"))
    key = image["urls"][0].removeprefix(f"s3://{farm.bucket}/")
    assert versions(farm.s3_url, farm.bucket, key) == 1


def test_a_failing_build_reports_its_log_tail_and_fails_submit(farm: Farm) -> None:
    proc = farm.submit("-P", "broken", "--set", "ostree.ref=os/eib-demo/amd64/missing",
                       "--wait", "--timeout", "300")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed" in proc.stdout
    assert "No such branch 'os/eib-demo/amd64/missing'" in proc.stdout
    assert "  | " in proc.stdout  # the log tail, line by line
    assert "eib-demo-master-amd64-amd64-broken failed on" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].endswith("not every variant was built: 1 failed")
    assert "Traceback" not in proc.stderr
    # The error stage published the build log alone, and no marker says "built".
    keys = list_keys(farm.s3_url, farm.bucket, "nightly/eib-demo-amd64-amd64/master/broken/")
    assert [k.rsplit("/", 1)[1] for k in keys] == ["build.txt"]
    status = farm.status()
    failed = [t for t in status["failed"] if t["variant"].endswith("-broken")]
    assert failed and "No such branch" in "\n".join(failed[0]["log_tail"])


def test_an_arm64_build_waits_for_an_arm64_worker(farm: Farm) -> None:
    proc = farm.submit("-a", "arm64", "--json")
    assert proc.returncode == 0, proc.stderr
    task_id = json.loads(proc.stdout)[0]["task_id"]
    waited = farm.submit("-a", "arm64", "--wait", "--timeout", "4")
    assert waited.returncode == 1
    assert "queued on arm64" in waited.stdout
    assert "unfinished (timed out)" in waited.stderr
    status = farm.status()
    queued = {t["task_id"]: t for t in status["queued"]}
    assert queued[task_id]["queue"] == "arm64"
    assert queued[task_id]["status"] == "queued"
    assert status["queues"]["arm64"] == 2  # both submits, untouched by the amd64 workers
    assert status["queues"]["amd64"] == 0
    text = farm.eib("farm", "status", "--broker", farm.broker)
    assert text.returncode == 0
    assert "arm64 2" in text.stdout and "queued on arm64" in text.stdout


def test_sigterm_lets_the_current_build_finish(farm: Farm) -> None:
    import signal

    proc = farm.submit("-P", "graceful", "--json")
    assert proc.returncode == 0, proc.stderr
    task_id = json.loads(proc.stdout)[0]["task_id"]

    def running() -> dict[str, Any] | None:
        return next((t for t in farm.status()["running"] if t["task_id"] == task_id), None)

    task = wait_for(running, 120, "the build to start")
    name = task["worker"].split("@")[0]
    worker = farm.workers.pop(name)
    worker.proc.send_signal(signal.SIGTERM)  # what systemd and Kubernetes send
    assert worker.proc.wait(timeout=300) == 0
    finished = {t["task_id"]: t for t in farm.status()["finished"]}
    assert finished[task_id]["status"] == "built"
    assert finished[task_id]["worker"] == task["worker"]
    assert "Warm shutdown" in worker.log.read_text()
