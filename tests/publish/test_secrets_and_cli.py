"""Secrets never leak, and `eib publish` re-publishes an output dir."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from eib import paths
from eib.model.plan import SecretRef
from eib.model.recipe import LocalTarget, RsyncTarget, S3Target
from eib.publish import publish_build


def files_containing(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            hits += [f"{p}: {n[:12]}…" for n in needles if n.encode() in data]
    return hits


@pytest.mark.slow
def test_publishing_secrets_appear_in_no_output_log_or_file(
    s3: Any, bucket: str, moto_url: str, sshd: Any, output_dir: Path, plan_for: Any,
    pub: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    aws_secret = "CANARY-aws-secret-5b1f0e77c2"
    key_text = sshd.identity.read_text()
    key_lines = [ln for ln in key_text.splitlines() if ln and not ln.startswith("-----")]
    canaries = [aws_secret, *key_lines]
    secrets = {
        "aws": f"[default]\naws_access_key_id = AKIDCANARY\naws_secret_access_key = {aws_secret}\n",
        "ssh-key": key_text,
    }
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    server = tmp_path / "srv"
    plan = plan_for(
        [
            S3Target(kind="s3", bucket=bucket, region="us-east-1", endpoint_url=moto_url,
                          credentials_secret="aws"),
            RsyncTarget(kind="rsync", host="127.0.0.1", user="root", port=sshd.port,
                          path=str(server), identity_secret="ssh-key"),
        ],
        secrets=[SecretRef(name="aws", source="env", where="EIB_AWS"),
                 SecretRef(name="ssh-key", source="env", where="EIB_SSH")],
    )  # fmt: skip
    caplog.set_level(logging.DEBUG)
    publish_build(plan, output_dir, secrets, settings=pub.fast)

    keys = pub.list_keys(s3, bucket, "")
    assert f"{pub.publish_path}/SHA256SUMS" in keys
    assert (server / pub.publish_path / "SHA256SUMS").is_file()
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "AKIDCANARY" in logged  # botocore's debug log is captured: the check can see it
    for canary in canaries:
        assert canary not in out and canary not in err and canary not in logged
        assert canary not in plan.to_json()
    for s3key in keys:
        body = s3.get_object(Bucket=bucket, Key=s3key)["Body"].read()
        assert not any(c.encode() in body for c in canaries), s3key
    for root in (output_dir, server, paths.cache_dir(), private_tmp):
        assert files_containing(root, canaries) == [], root
    assert list(private_tmp.iterdir()) == []  # the private copies of the secrets are gone


def eib(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["eib", *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
        timeout=120,
    )  # fmt: skip


def test_eib_publish_uses_the_plan_saved_in_the_output_dir(
    output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    root = tmp_path / "www"
    plan = plan_for([LocalTarget(kind="local", path=str(root))])
    (output_dir / f"{pub.outversion}.plan.json").write_text(plan.to_json())
    result = eib("publish", str(output_dir))
    assert result.returncode == 0, result.stderr
    dest = root / pub.publish_path
    assert result.stdout == f"published 8 files to {dest}\n"
    assert (dest / f"{pub.outversion}.plan.json").read_text() == plan.to_json()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dest, capture_output=True)
    assert check.returncode == 0


def test_eib_publish_with_an_explicit_plan_and_a_failing_target(
    output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory\n")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan_for([LocalTarget(kind="local", path=str(blocked))]).to_json())
    result = eib("publish", str(output_dir), "--plan", str(plan_file))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("eib: build failed: publish/local: ")
    assert "Traceback" not in result.stderr


def test_eib_publish_bad_input_exits_2(tmp_path: Path, output_dir: Path) -> None:
    missing = eib("publish", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a directory" in missing.stderr
    no_plan = eib("publish", str(output_dir))
    assert no_plan.returncode == 2 and "--plan or --recipe" in no_plan.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1}')
    invalid = eib("publish", str(output_dir), "--plan", str(bad))
    assert invalid.returncode == 2 and "not a plan JSON file" in invalid.stderr
    assert all("Traceback" not in r.stderr for r in (missing, no_plan, invalid))


def test_eib_publish_compiles_a_recipe_for_the_output_dirs_build_version(
    output_dir: Path, pub: Any, tmp_path: Path
) -> None:
    www = tmp_path / "www"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "eib: 1\n"
        "variant: {product: eos, branch: master, arch: amd64}\n"
        "publish:\n"
        '  path: "nightly/${build:product}-${build:arch}-${build:platform}/${build:branch}/'
        '${build:personality}/${build:build_version}"\n'
        f"  targets: [{{kind: local, path: {www}}}]\n"
    )
    result = eib("publish", str(output_dir), "--recipe", str(recipe), "--personality", "base")
    assert result.returncode == 0, result.stderr
    dest = www / pub.publish_path  # 261128-101500 comes from the output dir's file names
    assert result.stdout == f"published 7 files to {dest}\n"
    assert (dest / "build.txt").read_bytes() == (output_dir / "build.txt").read_bytes()


def test_an_unresolved_build_path_is_refused(output_dir: Path, plan_for: Any) -> None:
    from eib.errors import UserError

    plan = plan_for([LocalTarget(kind="local", path="/nonexistent")])
    raw = plan.model_copy(
        update={"publish": plan.publish.model_copy(update={"path": "nightly/${build:branch}"})}
    )
    with pytest.raises(UserError) as info:
        publish_build(raw, output_dir, {})
    assert info.value.key == "publish.path"


def test_eib_publish_reads_secrets_from_the_environment_without_showing_them(
    s3: Any, bucket: str, moto_url: str, output_dir: Path, plan_for: Any, pub: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    secret = "CANARY-cli-aws-secret-91d2"
    plan = plan_for(
        [S3Target(kind="s3", bucket=bucket, region="us-east-1", endpoint_url=moto_url,
                       credentials_secret="aws")],
        secrets=[SecretRef(name="aws", source="env", where="EIB_TEST_AWS_CREDENTIALS")],
    )  # fmt: skip
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())
    creds = f"[default]\naws_access_key_id = AKIDCLI\naws_secret_access_key = {secret}\n"
    result = eib("publish", str(output_dir), "--plan", str(plan_file),
                 env={"EIB_TEST_AWS_CREDENTIALS": creds})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"published 7 files to s3://{bucket}/{pub.publish_path} at ")
    assert secret not in result.stdout + result.stderr
    assert secret not in plan_file.read_text()
    assert len(pub.list_keys(s3, bucket, "")) == 7
    assert files_containing(output_dir, [secret]) == []
