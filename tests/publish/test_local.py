"""Publishing into a local directory: atomic rename into place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from eib.errors import BuildError, UserError
from eib.model.recipe import LocalTarget, RsyncTarget, S3Target
from eib.publish import publish_build, publish_error_log


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_local_publish_renames_a_complete_dir_into_place(
    output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    root = tmp_path / "www"
    plan = plan_for([LocalTarget(kind="local", path=str(root))])
    seen: list[list[str]] = []
    dest = root / pub.publish_path

    def progress(event: Any) -> None:
        # While files are copied, the destination does not exist yet.
        seen.append(sorted(os.listdir(dest.parent)) if dest.parent.exists() else [])
        assert not dest.exists()

    report = publish_build(plan, output_dir, {}, progress=progress, settings=pub.fast)
    assert seen and all(len(s) == 1 and s[0].startswith(".261128-101500.inprogress-") for s in seen)
    assert tree(dest) == tree(output_dir)
    assert "SHA256SUMS" in tree(dest) and ".inprogress" not in tree(dest)
    assert sorted(os.listdir(dest.parent)) == ["261128-101500"]  # no temp dir left
    assert oct(dest.stat().st_mode & 0o777) == "0o755"
    assert report.targets[0].location == str(dest)


def test_local_republish_replaces_an_error_log_atomically(
    output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    root = tmp_path / "www"
    plan = plan_for([LocalTarget(kind="local", path=str(root))])
    dest = root / pub.publish_path
    publish_error_log(plan, output_dir, {})
    assert tree(dest) == {"build.txt": (output_dir / "build.txt").read_bytes()}
    (dest / "stale-file").write_text("from an older attempt\n")
    publish_build(plan, output_dir, {}, settings=pub.fast)
    assert tree(dest) == tree(output_dir)
    assert sorted(os.listdir(dest.parent)) == ["261128-101500"]


def test_failure_on_a_later_target_removes_the_build_from_every_target(
    output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    good = tmp_path / "good"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory is needed\n")
    plan = plan_for([LocalTarget(kind="local", path=str(good)),
                     LocalTarget(kind="local", path=str(blocked / "www"))])  # fmt: skip
    with pytest.raises(BuildError) as info:
        publish_build(plan, output_dir, {}, settings=pub.fast)
    assert info.value.stage == "publish"
    assert str(blocked / "www") in info.value.message
    assert "partial upload was deleted" in info.value.message
    parent = good / pub.publish_path
    assert not parent.exists()
    assert list(parent.parent.iterdir()) == []  # not even a hidden temp dir


def test_a_build_path_that_could_escape_is_refused(
    output_dir: Path, plan_for: Any, tmp_path: Path
) -> None:
    plan = plan_for([LocalTarget(kind="local", path=str(tmp_path / "www"))])
    bad = plan.model_copy(update={"publish": plan.publish.model_copy(update={"path": "a/../.."})})
    with pytest.raises(UserError) as info:
        publish_build(bad, output_dir, {})
    assert info.value.key == "publish.path"
    assert not (tmp_path / "www").exists()


def test_a_target_without_its_required_field_is_not_a_target() -> None:
    with pytest.raises(ValidationError, match="bucket"):
        S3Target.model_validate({"kind": "s3", "region": "eu-west-1"})


def test_without_targets_only_the_checksums_are_written(output_dir: Path, plan_for: Any) -> None:
    report = publish_build(plan_for([]), output_dir, {})
    assert report.targets == ()
    sums = (output_dir / "SHA256SUMS").read_text()
    assert "  build.txt\n" in sums and "  ovf/" in sums and "SHA256SUMS" not in sums


def test_a_missing_secret_or_secret_file_names_the_target_key(
    output_dir: Path, plan_for: Any, tmp_path: Path
) -> None:
    plan = plan_for([RsyncTarget(kind="rsync", host="127.0.0.1", path="/srv",
                                   identity_secret="ssh-key")])  # fmt: skip
    with pytest.raises(UserError) as info:
        publish_build(plan, output_dir, {})
    assert info.value.key == "publish.targets[0].identity_secret"
    assert "'ssh-key'" in info.value.message
    with pytest.raises(UserError) as info:
        publish_build(plan, output_dir, {"ssh-key": str(tmp_path / "no-such-key.pem")})
    assert info.value.key == "publish.targets[0].identity_secret"
    assert "does not exist" in info.value.message


def test_a_signing_key_missing_from_the_keyring_fails_before_anything_is_published(
    output_dir: Path, plan_for: Any, gpg_key: Any, tmp_path: Path
) -> None:
    root = tmp_path / "www"
    plan = plan_for([LocalTarget(kind="local", path=str(root))],
                    signing_keyid="0123456789ABCDEF", gpg_homedir=str(gpg_key.homedir))  # fmt: skip
    with pytest.raises(BuildError) as info:
        publish_build(plan, output_dir, {})
    assert info.value.stage == "publish" and info.value.step == "checksums"
    assert "0123456789ABCDEF" in info.value.message
    assert not root.exists()
    assert not (output_dir / "SHA256SUMS.asc").exists()
