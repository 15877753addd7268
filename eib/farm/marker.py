"""The "already built" marker: one small JSON object per plan digest.

It lives at `<target path>/.eib-builds/<digest hex>.json` on every S3 and
local publish target and is written only after the whole build has been
published there, so its presence means "this exact plan is published, in
full".  A task finds it before building and ends as "already built"; a
redelivered task of a build that died mid-way finds none and builds again.
A shared S3 target therefore deduplicates builds across sites.  rsync
targets receive builds but hold no marker (checking one would need a shell
on the server).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eib import paths
from eib.errors import UserError
from eib.model.plan import Plan
from eib.model.recipe import PublishTarget
from eib.publish.publisher import open_target
from eib.publish.targets import Target, TransferSettings, join_path

log = logging.getLogger("eib.farm.marker")

MARKER_DIR = ".eib-builds"
MARKABLE = ("s3", "local")


def marker_name(digest: str) -> str:
    return digest.removeprefix("sha256:") + ".json"


def markable(plan: Plan) -> list[tuple[int, PublishTarget]]:
    return [(i, t) for i, t in enumerate(plan.publish.targets) if t.kind in MARKABLE]


def require_markable(plan: Plan) -> None:
    """The farm publishes every build and must be able to tell it did: refuse otherwise."""
    if not markable(plan):
        raise UserError(
            f"{plan.outputs.outversion}: the farm needs an s3 or local publish target "
            "(builds are published, and marked there as built)",
            key="publish.targets",
        )


def output_url(target: PublishTarget, prefix: str, name: str) -> str:
    """Where a published file can be fetched from; never holds a secret."""
    if target.kind == "s3":
        return f"s3://{target.bucket}/{join_path(target.path, prefix, name)}"
    if target.kind == "local":
        return "file://" + join_path(target.path, prefix, name)
    user = f"{target.user}@" if target.user else ""
    return f"rsync://{user}{target.host}/{join_path(target.path, prefix, name)}"


@contextmanager
def _opened(
    plan: Plan, secrets: Mapping[str, str]
) -> Iterator[list[tuple[PublishTarget, Target]]]:
    with tempfile.TemporaryDirectory(prefix="eib-marker-") as tmp:
        opened: list[tuple[PublishTarget, Target]] = []
        try:
            for index, target in markable(plan):
                handle = open_target(target, index, MARKER_DIR, secrets, Path(tmp),
                                     TransferSettings(), paths.cache_dir())
                opened.append((target, handle))
            yield opened
        finally:
            for _, handle in opened:
                handle.close()


def _read(target: PublishTarget, handle: Target, name: str) -> dict[str, Any] | None:
    if target.kind == "s3":
        from botocore.exceptions import ClientError

        client, bucket = handle.client, handle.bucket  # type: ignore[attr-defined]
        try:
            body = client.get_object(Bucket=bucket, Key=handle.key_of(name))  # type: ignore[attr-defined]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        data: dict[str, Any] = json.loads(body["Body"].read())
        return data
    path = Path(join_path(target.path, MARKER_DIR, name))
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return loaded


def _write(target: PublishTarget, handle: Target, name: str, body: bytes) -> None:
    if target.kind == "s3":
        handle.client.put_object(  # type: ignore[attr-defined]
            Bucket=handle.bucket, Key=handle.key_of(name), Body=body,  # type: ignore[attr-defined]
            ContentType="application/json",
        )
        return
    directory = Path(join_path(target.path, MARKER_DIR))
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, directory / name)


def read_marker(plan: Plan, secrets: Mapping[str, str]) -> dict[str, Any] | None:
    """The marker when every markable target holds it, else None (build again)."""
    name = marker_name(plan.digest)
    found: dict[str, Any] | None = None
    with _opened(plan, secrets) as targets:
        for target, handle in targets:
            doc = _read(target, handle, name)
            if doc is None or doc.get("digest") != plan.digest:
                return None
            found = found or doc
    return found


def write_marker(plan: Plan, secrets: Mapping[str, str], doc: Mapping[str, Any]) -> None:
    body = (json.dumps(dict(doc), sort_keys=True, indent=2) + "\n").encode()
    name = marker_name(plan.digest)
    with _opened(plan, secrets) as targets:
        for target, handle in targets:
            _write(target, handle, name, body)
            log.info("marked %s as built at %s", plan.digest, handle.location)
