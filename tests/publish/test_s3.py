"""Publishing to a real S3 server (moto_server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from eib.errors import BuildError
from eib.model.plan import SecretRef
from eib.model.recipe import S3Target
from eib.publish import PublishProgress, publish_build, publish_error_log


def s3_target(url: str, bucket: str, **kw: Any) -> S3Target:
    return S3Target(kind="s3", bucket=bucket, region="us-east-1", endpoint_url=url, **kw)


def expected_names(output_dir: Path) -> set[str]:
    return {p.relative_to(output_dir).as_posix() for p in output_dir.rglob("*") if p.is_file()}


def test_publish_uploads_every_file_with_headers_checksums_and_signature(
    s3: Any, bucket: str, moto_url: str, output_dir: Path, plan_for: Any, pub: Any,
    aws_credentials: tuple[Path, str], gpg_key: Any, tmp_path: Path,
) -> None:  # fmt: skip
    creds, _ = aws_credentials
    plan = plan_for(
        [s3_target(moto_url, bucket, path="images", credentials_secret="aws")],
        signing_keyid=gpg_key.keyid,
        gpg_homedir=str(gpg_key.homedir),
        secrets=[SecretRef(name="aws", source="file", where=str(creds))],
    )
    events: list[PublishProgress] = []
    report = publish_build(
        plan, output_dir, {"aws": str(creds)}, progress=events.append, settings=pub.fast
    )

    prefix = f"images/{pub.publish_path}/"
    names = expected_names(output_dir)  # now includes SHA256SUMS and its two signatures
    assert {"SHA256SUMS", "SHA256SUMS.asc", "SHA256SUMS.gpg", "build.txt",
            "ovf/" + pub.outversion + ".ovf"} <= names
    keys = pub.list_keys(s3, bucket, "")
    assert keys == sorted(prefix + n for n in names)
    assert not any(k.endswith(".inprogress") for k in keys)
    assert report.signed and len(report.targets) == 1
    assert report.targets[0].location.startswith(f"s3://{bucket}/{prefix.rstrip('/')}")

    for name in names:
        obj = s3.get_object(Bucket=bucket, Key=prefix + name, ChecksumMode="ENABLED")
        body = obj["Body"].read()
        assert body == (output_dir / name).read_bytes(), name
        assert obj.get("ChecksumSHA256"), name
        if name.endswith(".asc"):
            assert obj["ContentDisposition"] == "attachment", name
        else:
            assert "ContentDisposition" not in obj, name
        if name.endswith(".xml.gz"):
            assert obj["ContentType"] == "application/gzip"
    image = s3.head_object(Bucket=bucket, Key=f"{prefix}{pub.outversion}.img.gz")
    assert image["ETag"].strip('"').endswith("-3")  # three 5 MiB parts: multipart was used

    sums = s3.get_object(Bucket=bucket, Key=prefix + "SHA256SUMS")["Body"].read().decode()
    listed = dict(reversed(line.split("  ", 1)) for line in sums.splitlines())
    assert set(listed) == names - {"SHA256SUMS", "SHA256SUMS.asc", "SHA256SUMS.gpg"}
    for name, digest in listed.items():
        assert hashlib.sha256((output_dir / name).read_bytes()).hexdigest() == digest
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=output_dir,
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    down = tmp_path / "down"
    down.mkdir()
    for name in ("SHA256SUMS", "SHA256SUMS.asc", "SHA256SUMS.gpg"):
        s3.download_file(bucket, prefix + name, str(down / name))
    for signature in ("SHA256SUMS.asc", "SHA256SUMS.gpg"):  # .gpg: the legacy name
        verify = subprocess.run(
            ["gpg", "--homedir", str(gpg_key.homedir), "--verify",
             str(down / signature), str(down / "SHA256SUMS")],
            capture_output=True, text=True,
        )  # fmt: skip
        assert verify.returncode == 0 and "Good signature" in verify.stderr, verify.stderr
    (down / "SHA256SUMS").write_text(sums.replace("build.txt", "build.TXT"))
    tampered = subprocess.run(
        ["gpg", "--homedir", str(gpg_key.homedir), "--verify",
         str(down / "SHA256SUMS.asc"), str(down / "SHA256SUMS")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert tampered.returncode != 0

    total = sum((output_dir / n).stat().st_size for n in names)
    assert events and events[-1].sent == events[-1].total == total
    assert [e.sent for e in events] == sorted(e.sent for e in events)


@pytest.mark.slow
def test_failure_mid_upload_leaves_only_the_error_log_and_a_rerun_completes(
    s3: Any, bucket: str, moto_url: str, output_dir: Path, plan_for: Any, pub: Any,
    failing_proxy: Any,
) -> None:  # fmt: skip
    proxy = failing_proxy(3)  # the marker and two files go through, then 500s
    plan = plan_for([s3_target(proxy.url, bucket)])
    with pytest.raises(BuildError) as info:
        publish_build(plan, output_dir, {}, settings=pub.fast)
    assert info.value.stage == "publish"
    assert "InternalError" in info.value.message
    assert "partial upload was deleted" in info.value.message
    assert proxy.failed >= 2  # retried before giving up
    assert pub.list_keys(s3, bucket, "") == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    proxy.heal()  # the error stage runs once the store answers again
    publish_error_log(plan, output_dir, {}, settings=pub.fast)
    assert pub.list_keys(s3, bucket, "") == [f"{pub.publish_path}/build.txt"]

    report = publish_build(plan_for([s3_target(moto_url, bucket)]), output_dir, {},
                           settings=pub.fast)  # fmt: skip
    keys = pub.list_keys(s3, bucket, "")
    assert keys == sorted(f"{pub.publish_path}/{n}" for n in report.files)
    assert len(keys) == len(expected_names(output_dir))
    assert not report.signed and "SHA256SUMS.asc" not in report.files


@pytest.mark.slow
def test_failure_inside_a_multipart_upload_is_cleaned_up(
    s3: Any, bucket: str, output_dir: Path, plan_for: Any, pub: Any, failing_proxy: Any,
) -> None:  # fmt: skip
    # build.txt, the image's CreateMultipartUpload (a POST) and its first part pass.
    for p in output_dir.iterdir():
        if p.is_file() and not p.name.endswith((".img.gz", "build.txt")):
            p.unlink()
    import shutil

    shutil.rmtree(output_dir / "ovf")
    proxy = failing_proxy(3)
    with pytest.raises(BuildError):
        publish_build(plan_for([s3_target(proxy.url, bucket)]), output_dir, {}, settings=pub.fast)
    assert pub.list_keys(s3, bucket, "") == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_missing_bucket_fails_without_retrying_forever(
    moto_url: str, output_dir: Path, plan_for: Any, pub: Any
) -> None:
    plan = plan_for([s3_target(moto_url, "eib-no-such-bucket")])
    with pytest.raises(BuildError) as info:
        publish_build(plan, output_dir, {}, settings=pub.fast)
    assert "NoSuchBucket" in info.value.message
    assert info.value.stage == "publish"


@pytest.mark.slow
def test_an_object_corrupted_in_transit_is_detected_and_sent_again(
    s3: Any, bucket: str, output_dir: Path, plan_for: Any, pub: Any, failing_proxy: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    manifest = output_dir / f"{pub.outversion}.manifest.json"
    manifest.write_bytes(b"{" + b" " * 4000 + b"}\n")
    proxy = failing_proxy(10_000, corrupt=manifest.name)
    publish_build(plan_for([s3_target(proxy.url, bucket)]), output_dir, {}, settings=pub.fast)
    assert proxy.corrupted >= 2  # the damaged upload and its repetition
    assert f"{manifest.name} on the store: ETag" in caplog.text
    body = s3.get_object(Bucket=bucket, Key=f"{pub.publish_path}/{manifest.name}")["Body"].read()
    assert body == manifest.read_bytes()
    assert pub.list_keys(s3, bucket, "") == sorted(
        f"{pub.publish_path}/{n}" for n in expected_names(output_dir)
    )
