"""The farm's speed-up and overhead: the same N demo variants built by plain
`eib run` one after the other, by one farm worker, and by two farm workers
(separate dirs) on this machine, all publishing to an S3 server on loopback.

    .venv/bin/python benchmarks/farm.py [--variants 4]

Prints wall times, the two-worker speed-up over one worker, and the farm's
per-build overhead over a plain `eib run` (submit, queue, lock, marker, child
process); writes JSON (default benchmarks/results/farm.json).  Starts its own
redis-server and moto_server on random ports and removes everything after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EIB = [sys.executable, "-m", "eib.cli"]
DEMO_CACHE = Path(os.environ.get("EIB_CACHE_DIR", "/var/cache/eib"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EIB_", "AWS_"))}
    base.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                AWS_EC2_METADATA_DISABLED="true", EIB_SERVER="off",
                EIB_CACHE_DIR=str(DEMO_CACHE), PYTHONPATH=str(ROOT))
    return base


def recipe(path: Path, s3: str, bucket: str, port: int) -> Path:
    import boto3

    boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=bucket)
    path.write_text(
        f"eib: 1\nextends: [{ROOT / 'recipes' / 'demo.yaml'}]\ndemo: {{port: {port}}}\n"
        "publish:\n  targets:\n"
        f"    - {{kind: s3, bucket: {bucket}, endpoint_url: '{s3}', region: us-east-1}}\n")
    return path


def plain(scratch: Path, rec: Path, personalities: list[str]) -> float:
    cache = scratch / "plain-cache"
    cache.mkdir()
    (cache / "demo").symlink_to(DEMO_CACHE / "demo")
    started = time.monotonic()
    for p in personalities:
        subprocess.run([*EIB, "run", rec, "-P", p, "--cache-dir", cache,
                        "--work-dir", scratch / "plain-work"], env=env(), check=True,
                       capture_output=True)
    return time.monotonic() - started


def farm(scratch: Path, rec: Path, broker: str, personalities: list[str], workers: int) -> float:
    procs = []
    for n in range(workers):
        top = scratch / f"w{workers}-{n}"
        log = open(top.with_suffix(".log"), "wb")  # noqa: SIM115 (closed with the worker)
        procs.append((subprocess.Popen(
            [*EIB, "farm", "worker", "--broker", broker, "--queue", "amd64",
             "--name", f"bench{workers}-{n}@%h", "--work-dir", top / "work",
             "--cache-dir", top / "cache"],
            stdout=log, stderr=subprocess.STDOUT, env=env(), start_new_session=True), log))
    try:
        time.sleep(6)  # the workers connect
        started = time.monotonic()
        subprocess.run([*EIB, "farm", "submit", rec, "--broker", broker, "--wait", "--json",
                        "--matrix", "personality=" + ",".join(personalities)],
                       env=env(), check=True, capture_output=True)
        return time.monotonic() - started
    finally:
        for proc, log in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "farm.json")
    args = parser.parse_args()
    personalities = [f"bench{i}" for i in range(args.variants)]
    scratch = Path(tempfile.mkdtemp(prefix="eib-bench-farm-"))
    redis_port, s3_port = free_port(), free_port()
    servers = [
        subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", str(scratch)],
                         stdout=subprocess.DEVNULL),
        subprocess.Popen([shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1",
                          "-p", str(s3_port)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    try:
        wait_port(redis_port)
        wait_port(s3_port)
        s3, broker = f"http://127.0.0.1:{s3_port}", f"redis://127.0.0.1:{redis_port}/0"
        port = free_port()
        times: dict[str, Any] = {}
        times["plain"] = plain(scratch, recipe(scratch / "a.yaml", s3, "plain", port),
                               personalities)
        times["farm_1"] = farm(scratch, recipe(scratch / "b.yaml", s3, "one", port), broker,
                               personalities, 1)
        times["farm_2"] = farm(scratch, recipe(scratch / "c.yaml", s3, "two", port), broker,
                               personalities, 2)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=10)
        subprocess.run(["chattr", "-R", "-f", "-i", str(scratch)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    n = args.variants
    speedup = times["farm_1"] / times["farm_2"]
    overhead = (times["farm_1"] - times["plain"]) / n
    print(f"{n} demo variants, {os.cpu_count()} cores")
    print(f"{'plain eib run, one after another':40} {times['plain']:7.1f} s "
          f"({times['plain'] / n:.1f} s/build)")
    print(f"{'farm, 1 worker':40} {times['farm_1']:7.1f} s ({times['farm_1'] / n:.1f} s/build)")
    print(f"{'farm, 2 workers':40} {times['farm_2']:7.1f} s ({times['farm_2'] / n:.1f} s/build)")
    print(f"speed-up of 2 workers over 1: {speedup:.2f}x")
    print(f"farm overhead per build over plain eib run: {overhead:+.1f} s "
          f"({times['farm_1'] / times['plain']:.2f}x plain)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"variants": n, "cores": os.cpu_count(), "seconds": times,
                                     "speedup_2_over_1": speedup,
                                     "overhead_per_build_s": overhead}, indent=2) + "\n")


if __name__ == "__main__":
    main()
