"""Multipart uploads a killed publish left on S3, aborted by the next publish.

A store keeps (and bills) the parts of an unfinished multipart upload until
someone aborts it; a SIGKILLed publish never does. The `.inprogress` marker
a publish puts first names its owner (host, boot and `<pid>.<start time>`),
so the next publish to the same prefix can tell a dead owner from a live
one: it aborts the prefix's unfinished uploads when the marker's owner is
gone (or there is no marker: no publish is under way), and those older than
`STALE_UPLOAD_SECONDS` whatever the marker says (an owner on another host).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from eib.tools.owned import alive, identity

log = logging.getLogger("eib.publish")

STALE_UPLOAD_SECONDS = 6 * 3600


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def owner_record() -> bytes:
    """The marker's body: who is publishing."""
    return json.dumps({"host": socket.gethostname(), "boot": _boot_id(),
                       "owner": identity(os.getpid())}, sort_keys=True).encode()


def _owner_gone(client: Any, bucket: str, marker_key: str) -> bool:
    """No publish holds the prefix, or its marker names a process of this host that is gone."""
    try:
        body = client.get_object(Bucket=bucket, Key=marker_key)["Body"].read()
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        return code in ("NoSuchKey", "404")
    try:
        record = json.loads(body)
        host, boot, owner = record["host"], record["boot"], record["owner"]
    except (ValueError, KeyError, TypeError):
        return False  # an older eib's empty marker: only the age tells
    if host != socket.gethostname() or boot != _boot_id():
        return False
    return not alive(str(owner))


def _age(initiated: Any) -> float:
    if isinstance(initiated, datetime):
        return time.time() - initiated.timestamp()
    return 0.0


def abort_stale_uploads(client: Any, bucket: str, prefix: str, marker_key: str) -> int:
    """Abort the prefix's unfinished uploads a killed publish left; return how many."""
    try:
        uploads = [
            upload
            for page in client.get_paginator("list_multipart_uploads").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for upload in page.get("Uploads", [])
        ]
        if not uploads:
            return 0
        gone = _owner_gone(client, bucket, marker_key)
        aborted = 0
        for upload in uploads:
            if gone or _age(upload.get("Initiated")) > STALE_UPLOAD_SECONDS:
                log.info("aborting the unfinished upload of %s (%s), left by a killed publish",
                         upload["Key"], upload["UploadId"])
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                              UploadId=upload["UploadId"])
                aborted += 1
        return aborted
    except (ClientError, BotoCoreError) as err:
        # Not this publish's own problem: its uploads are new ones.
        log.warning("could not check s3://%s/%s for unfinished uploads: %s", bucket, prefix, err)
        return 0
