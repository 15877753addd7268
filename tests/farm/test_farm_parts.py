"""The farm's parts against the real servers: the digest lock on Redis, the
marker on S3 and in a directory, the shared demo server, and bad input."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from eib.errors import BuildError
from eib.execute.demo_share import listening, shared_serve
from eib.farm.digestlock import DigestLock, holder
from eib.farm.marker import read_marker, write_marker
from eib.farm.registry import connect
from eib.model.plan import Plan
from tests.farm.conftest import EIB, clean_env, free_port, make_bucket, write_recipe

DIGEST = "sha256:" + "ab" * 32


def test_the_digest_lock_is_exclusive_renewed_and_released_by_its_owner(redis_url: str) -> None:
    client = connect(redis_url)
    first = DigestLock(client, DIGEST, "w1@host task-1", ttl=1.5)
    second = DigestLock(client, DIGEST, "w2@host task-2", ttl=1.5)
    assert first.acquire()
    assert not second.acquire()
    first.start_renewing()
    time.sleep(3)  # twice the TTL: only the renewals keep it
    assert (holder(client, DIGEST) or "").startswith("w1@host task-1 ")
    second.release()  # not its lock: nothing happens
    assert holder(client, DIGEST) is not None
    first.release()
    assert holder(client, DIGEST) is None
    assert second.acquire()
    second.release()


def test_a_lost_lock_is_noticed(redis_url: str) -> None:
    client = connect(redis_url)
    lock = DigestLock(client, DIGEST, "w1@host task-3", ttl=1.2)
    assert lock.acquire()
    called: list[bool] = []
    lock.start_renewing(on_lost=lambda: called.append(True))
    client.set(f"eib-farm:lock:{DIGEST}", "someone else")
    assert lock.lost.wait(5)
    assert called == [True]
    lock.release()
    assert holder(client, DIGEST) == "someone else"
    client.delete(f"eib-farm:lock:{DIGEST}")


def _plan(recipe: Path) -> Plan:
    from eib.compile.compiler import CompileRequest
    from eib.farm.plans import compile_plans

    return compile_plans(CompileRequest(recipe), [])[0]


def test_the_marker_on_s3_and_in_a_directory(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in clean_env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    bucket = make_bucket(moto_url, "marker-test")
    recipe = write_recipe(tmp_path / "r.yaml", moto_url, bucket, 8690)
    text = recipe.read_text() + f"    - {{kind: local, path: {tmp_path / 'site'}}}\n"
    recipe.write_text(text)
    plan = _plan(recipe)
    assert read_marker(plan, {}) is None
    write_marker(plan, {}, {"digest": plan.digest, "worker": "w1@host"})
    found = read_marker(plan, {})
    assert found == {"digest": plan.digest, "worker": "w1@host"}
    local = tmp_path / "site" / ".eib-builds" / (plan.digest.removeprefix("sha256:") + ".json")
    assert json.loads(local.read_text())["worker"] == "w1@host"
    local.unlink()  # missing on one target: not built
    assert read_marker(plan, {}) is None


def test_builds_on_one_host_share_one_demo_server(tmp_path: Path) -> None:
    root = tmp_path / "serve"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "eib-demo.asc").write_text("the demo key\n")
    port = free_port()
    with shared_serve(root, port) as url, shared_serve(root, port) as again:
        assert url == again == f"http://127.0.0.1:{port}"
        servers = subprocess.run(["pgrep", "-f", f"eib.execute.demo_share {root} {port}"],
                                 capture_output=True, text=True).stdout.split()
        assert len(servers) == 1
    deadline = time.monotonic() + 10
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not listening(port)  # gone with its last user


def test_a_port_held_by_another_server_is_an_error(tmp_path: Path) -> None:
    from eib.demo.serve import serve

    other = tmp_path / "other"
    (other / "keys").mkdir(parents=True)
    (other / "keys" / "eib-demo.asc").write_text("another key\n")
    root = tmp_path / "serve"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "eib-demo.asc").write_text("the demo key\n")
    with serve(other, 0) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(BuildError, match=f"127.0.0.1:{port} is in use"), \
                shared_serve(root, port):
            pass


def _eib(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True,
                          env=env or clean_env(), timeout=120, check=False)


def test_bad_input_is_refused_before_anything_is_queued(
    redis_url: str, moto_url: str, tmp_path: Path
) -> None:
    client = connect(redis_url)
    before = client.zcard("eib-farm:tasks")
    recipe = write_recipe(tmp_path / "r.yaml", moto_url, "nothing", 8690)
    recipe.write_text(recipe.read_text() + "image: {compresion: xz}\n")
    proc = _eib("farm", "submit", recipe, "--broker", redis_url)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "compresion" in proc.stderr and "r.yaml:" in proc.stderr

    demo = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"
    proc = _eib("farm", "submit", demo, "--broker", redis_url)
    assert proc.returncode == 2
    assert "publish.targets" in proc.stderr and "s3 or local" in proc.stderr

    proc = _eib("farm", "submit", recipe, "--broker", "amqp://:secret@127.0.0.1/")
    assert proc.returncode == 2
    assert "--broker" in proc.stderr and "secret" not in proc.stderr

    proc = _eib("farm", "submit", demo, "--matrix", "colour=red", "--broker", redis_url)
    assert proc.returncode == 2 and "--matrix" in proc.stderr
    assert client.zcard("eib-farm:tasks") == before
    assert "Traceback" not in proc.stderr


def test_an_unreachable_broker_is_one_line_without_the_password() -> None:
    port = free_port()
    proc = _eib("farm", "status", "--broker", f"redis://:hunter2@127.0.0.1:{port}/0")
    assert proc.returncode == 1
    assert "cannot reach the broker at redis://:***@127.0.0.1" in proc.stderr
    assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr


def test_slots_link_the_one_demo_dir_even_before_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eib.demo.cache import _locked
    from eib.farm.slots import BaseDirs, link_demo, take_slot

    monkeypatch.delenv("EIB_DEMO_DIR", raising=False)
    plan = _plan(write_recipe(tmp_path / "recipe.yaml", "http://127.0.0.1:9", "b", 8123))
    base = BaseDirs(tmp_path / "cache", tmp_path / "work", tmp_path / "out")
    with take_slot(base) as slot:
        link_demo(plan, slot)
        with _locked(slot.cache / "demo"):  # what the demo build does first
            pass
        assert (slot.cache / "demo").resolve() == (tmp_path / "cache" / "demo").resolve()
        assert (tmp_path / "cache" / "demo" / ".lock").exists()
