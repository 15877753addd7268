"""Publish targets from a legacy INI configuration.

The legacy builder published through hooks configured by `[publish]`
(`s3_bucket`, `s3_region`, `path`: the S3 key prefix) and `[image]` (`host`
or `upload_api_host`, `user`, `path`: the rsync server, user and root
directory).  The compat layer calls `targets_from_legacy` with the merged
sections; the legacy `[publish] path` itself becomes the recipe's
`publish.path`, so the S3 target carries no path of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from eib.errors import UserError
from eib.model.recipe import PublishTarget, RsyncTarget, S3Target


def _first(section: Mapping[str, str], *keys: str) -> str:
    for key in keys:
        value = section.get(key, "").strip()
        if value:
            return value
    return ""


def targets_from_legacy(
    sections: Mapping[str, Mapping[str, str]],
    *,
    credentials_secret: str = "",
    identity_secret: str = "",
) -> list[PublishTarget]:
    """The targets the legacy options describe: S3 first (as the legacy hooks ran), then rsync.

    `credentials_secret` and `identity_secret` name the secrets the compat
    layer made from the legacy private files (the AWS credentials file and
    the ssh key); empty means boto3's usual chain and ssh's default keys.
    """
    publish = sections.get("publish", {})
    image = sections.get("image", {})
    targets: list[PublishTarget] = []
    bucket = _first(publish, "s3_bucket")
    if bucket:
        targets.append(
            S3Target(
                kind="s3",
                bucket=bucket,
                region=_first(publish, "s3_region"),
                endpoint_url=_first(publish, "s3_endpoint_url"),
                credentials_secret=credentials_secret,
            )
        )
    host = _first(image, "upload_api_host", "upload_host", "host")
    if host:
        port_text = _first(image, "upload_port", "port")
        try:
            port = int(port_text) if port_text else None
        except ValueError:
            raise UserError(f"'{port_text}' is not a port number", key="image.port") from None
        targets.append(
            RsyncTarget(
                kind="rsync",
                host=host,
                user=_first(image, "upload_user", "user"),
                port=port,
                path=_first(image, "upload_path", "path"),
                identity_secret=identity_secret,
            )
        )
    return targets
