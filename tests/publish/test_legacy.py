"""Legacy `[publish]` and `[image]` options become publish targets."""

from __future__ import annotations

import pytest

from eib.errors import UserError
from eib.model.recipe import RsyncTarget, S3Target
from eib.publish import targets_from_legacy


def test_s3_and_upload_host_map_onto_targets() -> None:
    sections = {
        "publish": {"s3_bucket": "images-bucket", "s3_region": "us-west-2",
                    "path": "nightly/eos-amd64-amd64/master/base/261128-101500"},
        "image": {"upload_api_host": "images.example.org", "user": "uploader",
                  "path": "/srv/images/www", "compression": "gz"},
    }  # fmt: skip
    targets = targets_from_legacy(sections, credentials_secret="aws", identity_secret="ssh")
    assert targets == [
        S3Target(kind="s3", bucket="images-bucket", region="us-west-2",
                      credentials_secret="aws"),
        RsyncTarget(kind="rsync", host="images.example.org", user="uploader",
                      path="/srv/images/www", identity_secret="ssh"),
    ]  # fmt: skip


def test_no_publish_options_means_no_targets() -> None:
    assert targets_from_legacy({"image": {"compression": "xz"}, "publish": {"s3_bucket": ""}}) == []


def test_a_bad_port_names_the_key() -> None:
    with pytest.raises(UserError) as info:
        targets_from_legacy({"image": {"host": "h", "port": "twenty-two"}})
    assert info.value.key == "image.port"
