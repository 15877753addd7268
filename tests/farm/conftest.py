"""Fixtures for the farm: a real redis-server and S3 server (moto) on random
127.0.0.1 ports, a recipe building the demo into a bucket, and real `eib farm
worker` subprocesses, each with its own dirs, stopped and cleaned up after."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from eib.paths import RECIPES_DIR
from tests.loopback import free_port, moto_server, wait_for_port

EIB = [sys.executable, "-m", "eib.cli"]
# The demo OS is built once per machine and shared with tests/integration.
CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache")) / "run-cache"
EPOCH = "1764800000"
# Short farm timeouts, so a killed worker's task comes back within a minute.
TUNABLES = {
    "EIB_FARM_VISIBILITY_TIMEOUT": "45",
    "EIB_FARM_LOCK_TTL": "6",
    "EIB_FARM_RETRY_DELAY": "2",
}
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, wait: float = 30) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EIB_", "AWS_", "SOURCE_DATE_EPOCH"))}
    env.update(AWS)
    env["EIB_SERVER"] = "off"
    return env


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def s3_client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def make_bucket(url: str, name: str) -> str:
    client = s3_client(url)
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def write_recipe(path: Path, moto_url: str, bucket: str, demo_port: int) -> Path:
    path.write_text(
        "eib: 1\n"
        f"extends: [{RECIPES_DIR / 'demo.yaml'}]\n"
        f"demo: {{port: {demo_port}}}\n"
        "publish:\n"
        "  targets:\n"
        f"    - {{kind: s3, bucket: {bucket}, endpoint_url: '{moto_url}', region: us-east-1}}\n"
    )
    return path


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    root: Path
    log: Path

    @property
    def nodename(self) -> str:
        return f"{self.name}@{socket.gethostname()}"


@dataclass
class Farm:
    broker: str
    s3_url: str
    bucket: str
    recipe: Path
    top: Path
    workers: dict[str, Worker] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_env()
        env.update(TUNABLES)
        env["EIB_CACHE_DIR"] = str(CACHE)
        env["EIB_DEMO_DIR"] = str(CACHE / "demo")  # workers use the shared test demo
        env["SOURCE_DATE_EPOCH"] = EPOCH
        env.update(extra)
        return env

    def start_worker(self, name: str, *queues: str) -> Worker:
        root = self.top / name
        root.mkdir(parents=True, exist_ok=True)
        log = root / "worker.log"
        argv = [*EIB, "farm", "worker", "--broker", self.broker, "--name",
                f"{name}@{socket.gethostname()}", "--work-dir", str(root / "work"),
                "--cache-dir", str(root / "cache"), "--output-dir", str(root / "out")]
        for queue in queues or ("amd64",):
            argv += ["--queue", queue]
        env = self.env()
        del env["SOURCE_DATE_EPOCH"]  # a worker builds what the plan says, whatever its clock
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        worker = Worker(name, proc, root, log)
        self.workers[name] = worker
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        return worker

    def kill(self, name: str) -> None:
        """A machine dying: the worker and everything in its process group, at once."""
        worker = self.workers.pop(name)
        stop_group(worker.proc, signal.SIGKILL)

    def eib(self, *args: str | Path, timeout: float = 600,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True,
                              env=self.env(**env), timeout=timeout, check=False)

    def submit(self, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        return self.eib("farm", "submit", self.recipe, "--broker", self.broker, *args, **env)

    def status(self) -> dict[str, Any]:
        proc = self.eib("farm", "status", "--broker", self.broker, "--json", "--limit", "0")
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def stop_all(self) -> None:
        for worker in list(self.workers.values()):
            stop_group(worker.proc, signal.SIGTERM)
        self.workers.clear()


@pytest.fixture(scope="module")
def farm(
    redis_url: str, moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    top = tmp_path_factory.mktemp("farm")
    bucket = make_bucket(moto_url, f"farm-{os.getpid()}-{int(time.time())}")
    recipe = write_recipe(top / "recipe.yaml", moto_url, bucket, free_port())
    farm = Farm(redis_url, moto_url, bucket, recipe, top)
    try:
        yield farm
    finally:
        farm.stop_all()
        remove(top)


def list_keys(url: str, bucket: str, prefix: str = "") -> list[str]:
    client = s3_client(url)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def versions(url: str, bucket: str, key: str) -> int:
    reply = s3_client(url).list_object_versions(Bucket=bucket, Prefix=key)
    return sum(1 for v in reply.get("Versions", []) if v["Key"] == key)
