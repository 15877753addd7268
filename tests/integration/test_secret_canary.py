"""A secret canary through a full demo build with publishing to S3 (moto on
127.0.0.1): a recipe secret, a legacy private.ini value and the caller's
AWS_SECRET_ACCESS_KEY reach the build, and none of them appears in the plan,
the build's output, log, manifest, outputs, the uploaded objects or any
process's command line sampled while the build runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from eib.paths import RECIPES_DIR
from tests.loopback import free_port, moto_server

EIB = [sys.executable, "-m", "eib.cli"]
CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache")) / "run-cache"
RECIPE_SECRET = "CANARY-recipe-6a0d3b"
LEGACY_SECRET = "CANARY-legacy-91fe27"
AWS_SECRET = "CANARY-aws-c4d58e0b"
CANARIES = (RECIPE_SECRET, LEGACY_SECRET, AWS_SECRET)


class CmdlineWatch(threading.Thread):
    """Collects every process's command line, every few milliseconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            self.seen.add(f.read().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass
            self.done.wait(0.005)


@pytest.fixture
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.mark.slow
def test_secret_canary_through_a_published_demo_build(tmp_path: Path, moto_url: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="AKIDCANARYTEST", aws_secret_access_key=AWS_SECRET)
    s3.create_bucket(Bucket="canary")
    top = tmp_path / "recipe"
    (top / "hooks" / "image").mkdir(parents=True)
    (top / "private.ini").write_text(f"[custom]\ntoken = {LEGACY_SECRET}\n")
    (top / "private.ini").chmod(0o600)
    hook = top / "hooks" / "image" / "90-canary"
    hook.write_text(
        'echo "recipe=$EIB_SECRETS_RECIPE legacy=$EIB_SECRETS_LEGACY"\n'
        'printf "%s\\n" "$EIB_SECRETS_RECIPE" > "$OSTREE_DEPLOYMENT/etc/recipe-secret"\n'
        'printf "%s\\n" "$EIB_SECRETS_LEGACY" > "$OSTREE_DEPLOYMENT/etc/legacy-secret"\n'
        'printf \'{"canary": "%s"}\\n\' "$EIB_SECRETS_LEGACY" > "$EIB_MANIFESTDIR/canary.json"\n'
    )
    recipe = top / "recipe.yaml"
    recipe.write_text(
        f"eib: 1\nextends: [{RECIPES_DIR / 'demo.yaml'}]\n"
        "hooks: {image: [50-hostname, 50-timezone, 50-language, 70-ostree-manifest, 90-canary]}\n"
        "secrets:\n"
        f"  recipe: {{value: {RECIPE_SECRET}}}\n"
        "  legacy: {file: private.ini, key: custom.token}\n"
        "publish:\n"
        "  path: builds/canary\n"
        "  targets: [{kind: s3, bucket: canary, region: us-east-1,"
        f" endpoint_url: '{moto_url}'}}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EIB_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="AKIDCANARYTEST", AWS_SECRET_ACCESS_KEY=AWS_SECRET)
    work = tmp_path / "work"
    port = free_port()
    plan = subprocess.run([*EIB, "plan", str(recipe), "--json", "--set", f"demo.port={port}"],
                          capture_output=True, text=True, env=env, check=False)
    assert plan.returncode == 0, plan.stderr
    watch = CmdlineWatch()
    watch.start()
    try:
        proc = subprocess.run([*EIB, "run", str(recipe), "--set", f"demo.port={port}",
                               "--cache-dir", str(CACHE), "--work-dir", str(work), "--no-cache"],
                              capture_output=True, text=True, env=env, timeout=900, check=False)
    finally:
        watch.done.set()
        watch.join()
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        deploy = next((work / "sysroot/ostree/deploy/eib-demo/deploy").glob("*.0"))
        assert (deploy / "etc/recipe-secret").read_text() == RECIPE_SECRET + "\n"
        assert (deploy / "etc/legacy-secret").read_text() == LEGACY_SECRET + "\n"
        assert any("ostree" in c for c in watch.seen)  # the sampling saw the build's tools
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="canary")["Contents"]]
        assert any(k.endswith(".manifest.json") for k in keys)
        log = (work / "out" / "build.txt").read_text()
        assert "recipe=<redacted> legacy=<redacted>" in log
        for canary in CANARIES:
            assert canary not in plan.stdout + plan.stderr
            assert canary not in proc.stdout + proc.stderr
            assert not [c for c in watch.seen if canary in c]
            for key in keys:
                assert canary.encode() not in s3.get_object(Bucket="canary", Key=key)["Body"].read()
            for path in (work / "out").rglob("*"):
                if path.is_file() and path.stat().st_size < 64 << 20:
                    assert canary.encode() not in path.read_bytes(), path
    finally:
        subprocess.run(["chattr", "-R", "-f", "-i", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
