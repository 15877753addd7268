"""Publishing to S3 or an S3-compatible store (boto3).

Each object is uploaded with a SHA-256 checksum, then read back with
`head_object` and compared with what was computed locally from the same
bytes (the ETag's MD5 scheme and the SHA-256 checksum, single or multipart),
so a corrupted or truncated upload fails the build instead of being
published.  botocore retries throttling and 5xx per request; an object whose
upload still fails is retried from the start a few times with backoff.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)
from s3transfer.utils import ChunksizeAdjuster

from eib.errors import BuildError
from eib.model.recipe import S3Target as S3Settings
from eib.publish.s3_stale import abort_stale_uploads, owner_record
from eib.publish.targets import (
    MARKER,
    ProgressMeter,
    PublishFile,
    Target,
    TransferSettings,
    join_path,
    publish_error,
    secret_file,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger("eib.publish")

CHUNK = 4 * 1024 * 1024
# Errors worth another try: the store is busy or broken for a moment.
RETRYABLE_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "BadDigest",
    "IncompleteBody",
}


@dataclass(frozen=True)
class Digests:
    """What the store should report for one file uploaded in parts of `chunksize`."""

    etag: str
    sha256_full: str
    sha256_composite: str
    sha256_hex: str
    parts: int


def content_headers(name: str) -> dict[str, str]:
    """Headers a browser needs to handle a download the way users expect."""
    extra: dict[str, str] = {}
    if name.endswith(".xml.gz"):
        extra["ContentType"] = "application/gzip"
    else:
        guessed, _encoding = mimetypes.guess_type(name, strict=False)
        extra["ContentType"] = guessed or "application/octet-stream"
    if name.endswith(".asc"):
        extra["ContentDisposition"] = "attachment"
    return extra


def file_digests(path: Path, chunksize: int) -> Digests:
    """One pass over the file: MD5 and SHA-256 per part and overall."""
    md5s: list[bytes] = []
    shas: list[bytes] = []
    full = hashlib.sha256()
    with path.open("rb") as f:
        while True:
            part = f.read(chunksize)
            if not part and md5s:
                break
            md5s.append(hashlib.md5(part, usedforsecurity=False).digest())
            shas.append(hashlib.sha256(part).digest())
            full.update(part)
            if not part:
                break
    if len(md5s) == 1:
        etag = md5s[0].hex()
        composite = base64.b64encode(shas[0]).decode()
    else:
        etag = f"{hashlib.md5(b''.join(md5s), usedforsecurity=False).hexdigest()}-{len(md5s)}"
        composite = base64.b64encode(hashlib.sha256(b"".join(shas)).digest()).decode()
    return Digests(
        etag=etag,
        sha256_full=base64.b64encode(full.digest()).decode(),
        sha256_composite=composite,
        sha256_hex=full.hexdigest(),
        parts=len(md5s),
    )


def is_retryable(err: Exception) -> bool:
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in RETRYABLE_CODES or status >= 500 or status == 429
    # Missing credentials or bad parameters stay broken however often they are tried.
    return not isinstance(err, NoCredentialsError | ParamValidationError)


def error_text(err: Exception) -> str:
    if isinstance(err, ClientError):
        info = err.response.get("Error", {})
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{info.get('Code', 'error')} (HTTP {status}): {info.get('Message', '')}".strip()
    return str(err) or type(err).__name__


class ChecksumMismatch(Exception):
    """The store holds other bytes than were sent."""


UPLOAD_ERRORS = (ClientError, BotoCoreError, S3UploadFailedError, ChecksumMismatch, OSError)


class S3Target(Target):
    kind = "s3"

    def __init__(
        self,
        target: S3Settings,
        prefix: str,
        secrets: Mapping[str, str],
        workdir: Path,
        settings: TransferSettings,
        *,
        key: str,
    ) -> None:
        self.bucket = target.bucket
        self.prefix = join_path(target.path, prefix)
        self.endpoint = target.endpoint_url
        self.settings = settings
        self.client = self._client(target, secrets, workdir, key)
        self.existing: frozenset[str] = frozenset()
        self.transfer = TransferConfig(
            multipart_threshold=settings.multipart_threshold,
            multipart_chunksize=settings.multipart_chunksize,
            max_concurrency=settings.max_concurrency,
        )

    def _client(
        self, target: S3Settings, secrets: Mapping[str, str], workdir: Path, key: str
    ) -> S3Client:
        """A client of its own botocore session, so nothing global changes.

        A credentials file from the secrets is set as this session's
        `credentials_file` (what AWS_SHARED_CREDENTIALS_FILE sets globally)
        and wins over AWS_* variables; without one, boto3's usual chain
        applies.
        """
        core = botocore.session.Session()
        if target.credentials_secret:
            path = secret_file(
                secrets, target.credentials_secret, workdir, key=f"{key}.credentials_secret"
            )
            core.set_config_variable("credentials_file", str(path))
            # The recipe named these credentials: the environment must not override them.
            core.get_component("credential_provider").remove("env")
        session = boto3.Session(botocore_session=core, region_name=target.region or None)
        options: dict[str, Any] = {}
        if target.endpoint_url:
            # S3-compatible stores rarely serve virtual-host-style bucket names.
            options["s3"] = {"addressing_style": "path"}
        config = Config(
            retries={"mode": "adaptive", "max_attempts": self.settings.request_attempts},
            connect_timeout=self.settings.timeout_seconds,
            read_timeout=self.settings.timeout_seconds,
            **options,
        )
        return session.client(
            "s3",
            endpoint_url=target.endpoint_url or None,
            region_name=target.region or None,
            config=config,
        )

    @property
    def location(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def key_of(self, name: str) -> str:
        return join_path(self.prefix, name)

    def _attempts(self, what: str) -> Iterator[int]:
        """Attempt numbers with exponential backoff between them."""
        for attempt in range(1, self.settings.object_attempts + 1):
            if attempt > 1:
                delay = self.settings.backoff_seconds * 2 ** (attempt - 2)
                log.warning("retrying %s in %.1f s (attempt %d)", what, delay, attempt)
                time.sleep(delay)
            yield attempt

    def begin(self) -> None:
        """Note what the prefix already holds, then mark the build as in progress.

        The keys found here belong to an earlier publish of this build: an
        aborted publish must leave them, so `abort` deletes only the others.
        Unfinished uploads a killed publish left are aborted first; the
        marker names this publish's process for the next one to judge.
        """
        last: Exception | None = None
        for _ in self._attempts(f"creating {MARKER}"):
            try:
                abort_stale_uploads(self.client, self.bucket, self.prefix + "/",
                                    self.key_of(MARKER))
                self.existing = frozenset(self._keys())
                self.client.put_object(Bucket=self.bucket, Key=self.key_of(MARKER),
                                       Body=owner_record())
                return
            except (ClientError, BotoCoreError) as err:
                last = err
                if not is_retryable(err):
                    break
        assert last is not None
        raise publish_error(
            f"cannot create {MARKER} in {self.location}: {error_text(last)}", step="s3"
        ) from last

    def _keys(self) -> list[str]:
        """Every key below the build's prefix."""
        keys: list[str] = []
        for listing in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "/"
        ):
            keys.extend(obj["Key"] for obj in listing.get("Contents", []))
        return keys

    def upload(self, files: Sequence[PublishFile], meter: ProgressMeter) -> None:
        for f in files:
            self._upload_one(f, meter)

    def _upload_one(self, f: PublishFile, meter: ProgressMeter) -> None:
        key = self.key_of(f.name)
        chunksize = ChunksizeAdjuster().adjust_chunksize(self.settings.multipart_chunksize, f.size)
        multipart = f.size >= self.settings.multipart_threshold
        digests = file_digests(f.path, chunksize if multipart else max(f.size, 1))
        if digests.sha256_hex != f.sha256:
            raise publish_error(
                f"{f.name} changed while it was published (sha256 {digests.sha256_hex}, "
                f"expected {f.sha256})",
                step="s3",
            )
        extra: dict[str, Any] = {**content_headers(f.name), "ChecksumAlgorithm": "SHA256"}
        last: Exception | None = None
        for _ in self._attempts(f"uploading {f.name}"):
            before = meter.sent
            try:
                self.client.upload_file(
                    str(f.path),
                    self.bucket,
                    key,
                    ExtraArgs=extra,
                    Config=self.transfer,
                    Callback=lambda nbytes: meter.add(f.name, nbytes),
                )
                self._verify(key, f, digests)
                log.info("published %s to %s (%d bytes)", f.name, self.location, f.size)
                return
            except UPLOAD_ERRORS as err:
                meter.rewind(meter.sent - before)
                last = err
                log.warning("uploading %s to %s failed: %s", f.name, self.location, error_text(err))
                if not is_retryable(err):
                    break
        assert last is not None
        raise publish_error(
            f"uploading {f.name} to {self.location} failed: {error_text(last)}", step="s3"
        ) from last

    def _verify(self, key: str, f: PublishFile, digests: Digests) -> None:
        """Compare the store's view of the object with the local digests.

        The ETag is the MD5 scheme (of the whole object, or of the parts'
        MD5s) unless the object is encrypted with KMS or a customer key; the
        SHA-256 checksum is whole-object or the composite of the parts.  Both
        are checked when available, because some S3-compatible stores echo
        the checksum the client declared instead of computing it.
        """
        head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        problems: list[str] = []
        if head.get("ContentLength") != f.size:
            problems.append(f"size {head.get('ContentLength')} instead of {f.size}")
        etag = str(head.get("ETag", "")).strip('"')
        encrypted = str(head.get("ServerSideEncryption", "")).startswith("aws:kms") or bool(
            head.get("SSECustomerAlgorithm")
        )
        if not encrypted and etag != digests.etag:
            problems.append(f"ETag {etag} instead of {digests.etag}")
        checksum = head.get("ChecksumSHA256")
        if checksum and checksum.split("-")[0] not in (
            digests.sha256_full,
            digests.sha256_composite,
        ):
            problems.append(f"SHA-256 checksum {checksum} does not match")
        if encrypted and not checksum:
            log.warning("%s: the store reports no checksum to verify", key)
        if problems:
            raise ChecksumMismatch(f"{f.name} on the store: {'; '.join(problems)}")

    def finish(self) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key_of(MARKER))
        except (ClientError, BotoCoreError) as err:
            raise publish_error(
                f"cannot remove {MARKER} from {self.location}: {error_text(err)}", step="s3"
            ) from err

    def abort(self) -> None:
        """Abort the unfinished multipart uploads below the prefix and delete the
        objects this publish created; objects that were there before it began
        (an earlier publish of the same build) stay."""
        prefix = self.prefix + "/"
        try:
            for uploads in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for upload in uploads.get("Uploads", []):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            keys = [k for k in self._keys() if k not in self.existing]
            # The marker goes last, so an interrupted cleanup still shows the build as partial.
            keys.sort(key=lambda k: k.endswith("/" + MARKER))
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                reply = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
                failed = reply.get("Errors", [])
                if failed:
                    first = failed[0]
                    raise BuildError(
                        f"cleaning up {self.location}: {len(failed)} objects were not deleted "
                        f"({first.get('Key')}: {first.get('Code')})",
                        stage="publish",
                    )
        except (ClientError, BotoCoreError) as err:
            raise BuildError(
                f"cleaning up {self.location} failed: {error_text(err)}", stage="publish"
            ) from err
        kept = f"; kept the {len(self.existing)} published before" if self.existing else ""
        log.info("deleted the partial upload at %s (%d objects%s)", self.location, len(keys),
                 kept)

    def put_log(self, log_file: PublishFile) -> None:
        self._upload_one(log_file, ProgressMeter(self.location, log_file.size, None))

    def close(self) -> None:
        self.client.close()
