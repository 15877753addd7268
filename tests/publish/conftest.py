"""Fixtures for the publish tests: a real S3 server (moto), a real sshd, a
GPG key, a fake output dir and plans pointing at them, all on 127.0.0.1 and
below tmp paths."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from eib.model.plan import Outputs, Plan, PublishPlan, SecretRef
from eib.model.recipe import Build, Demo, Flatpak, Image, Ostree, PublishTarget
from eib.publish import TransferSettings
from tests.loopback import free_port, moto_server, stop, wait_for_port

OUTVERSION = "eos-master-amd64-amd64.261128-101500.base"
PUBLISH_PATH = "nightly/eos-amd64-amd64/master/base/261128-101500"
MiB = 1024 * 1024
# Small parts so a 12 MiB file goes up in three parts; quick retries.
FAST = TransferSettings(
    multipart_threshold=5 * MiB,
    multipart_chunksize=5 * MiB,
    request_attempts=2,
    object_attempts=2,
    backoff_seconds=0.05,
    timeout_seconds=20,
)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's usual chain finds test credentials in the environment, nothing of the host's."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def s3_client(url: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3(moto_url: str) -> object:
    return s3_client(moto_url)


@pytest.fixture
def bucket(s3: object, request: pytest.FixtureRequest) -> str:
    name = "eib-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


def list_keys(s3: object, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(  # type: ignore[attr-defined]
        Bucket=bucket, Prefix=prefix
    ):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


@pytest.fixture
def aws_credentials(tmp_path: Path) -> tuple[Path, str]:
    """A shared credentials file with a recognisable (canary) secret key."""
    secret = "CANARY-aws-secret-7f3e9d1c"
    path = tmp_path / "aws-credentials"
    path.write_text(
        f"[default]\naws_access_key_id = AKIDEIBTEST\naws_secret_access_key = {secret}\n"
    )
    return path, secret


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """A finished build's output dir: image, signature, manifest, appstream, log."""
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{OUTVERSION}.img.gz").write_bytes(os.urandom(12 * MiB + 12345))
    (out / f"{OUTVERSION}.img.gz.asc").write_text(
        "-----BEGIN PGP SIGNATURE-----\nfake\n-----END PGP SIGNATURE-----\n"
    )
    (out / f"{OUTVERSION}.manifest.json").write_text('{"version": 1}\n')
    (out / f"{OUTVERSION}.appstream.xml.gz").write_bytes(b"\x1f\x8b" + os.urandom(300))
    (out / "build.txt").write_text("build log line 1\nbuild log line 2\n")
    (out / "ovf").mkdir()
    (out / "ovf" / f"{OUTVERSION}.ovf").write_text("<ovf/>\n")
    return out


def make_plan(
    targets: list[PublishTarget],
    cachedir: Path,
    *,
    signing_keyid: str = "",
    gpg_homedir: str = "",
    secrets: list[SecretRef] | None = None,
) -> Plan:
    return Plan(
        eib_version="0.1.0",
        recipe="recipe.yaml",
        source_date_epoch=None,
        build=Build(
            product="eos",
            branch="master",
            arch="amd64",
            platform="amd64",
            personality="base",
            build_version="261128-101500",
        ),
        ostree=Ostree(),
        image=Image(signing_keyid=signing_keyid, gpg_homedir=gpg_homedir),
        flatpak=Flatpak(),
        hooks=[],
        publish=PublishPlan(path=PUBLISH_PATH, targets=targets),
        demo=Demo(),
        secrets=secrets or [],
        extra={},
        env={},
        outputs=Outputs(
            outversion=OUTVERSION,
            image=f"{OUTVERSION}.img",
            compressed=f"{OUTVERSION}.img.gz",
            manifest=f"{OUTVERSION}.manifest.json",
            config=f"{OUTVERSION}.config.yaml",
            plan=f"{OUTVERSION}.plan.json",
        ),
        stages=[],
    ).with_digest()


PlanFactory = Callable[..., Plan]


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Publishing keeps its ssh known_hosts in the cache dir: each test gets its own."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EIB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def plan_for(tmp_path: Path) -> PlanFactory:
    def factory(targets: list[PublishTarget], **kw: object) -> Plan:
        return make_plan(targets, tmp_path / "cache", **kw)  # type: ignore[arg-type]

    return factory


@dataclass(frozen=True)
class GpgKey:
    homedir: Path
    keyid: str


@pytest.fixture(scope="session")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> GpgKey:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    subprocess.run(
        [
            "gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
            "--passphrase", "", "--quick-gen-key", "eib publish test <publish@example.org>",
            "ed25519", "sign", "never",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return GpgKey(home, fpr)


@dataclass(frozen=True)
class Sshd:
    port: int
    identity: Path
    gate_flag: Path


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1 accepting one key for root.

    Every session goes through a small gate script (authorized_keys
    `command=`) that runs the client's command; while the flag file exists it
    first limits the size of written files to 4 MiB (`ulimit -f`), so an
    rsync receiving a bigger file fails in the middle of the transfer.
    """
    d = tmp_path_factory.mktemp("sshd")
    port = free_port()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")],
                   check=True)  # fmt: skip
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")],
                   check=True)  # fmt: skip
    flag = d / "limit-file-size"
    gate = d / "gate.sh"
    gate.write_text(
        f"#!/bin/sh\nif [ -e {flag} ]; then ulimit -f 4096; fi\n"
        'exec sh -c "$SSH_ORIGINAL_COMMAND"\n'
    )
    gate.chmod(0o755)
    pub = (d / "client_key.pub").read_text().strip()
    (d / "authorized_keys").write_text(f'command="{gate}",no-pty {pub}\n')
    (d / "authorized_keys").chmod(0o600)
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"StrictModes no\nPidFile {d / 'sshd.pid'}\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(d / "sshd.log").open("wb"),
    )
    try:
        wait_for_port(port, proc)
        yield Sshd(port, d / "client_key", flag)
    finally:
        stop(proc)


class FailingProxy:
    """An HTTP proxy in front of the S3 server that breaks uploads on demand.

    It forwards every request, but once `fail_after` object uploads (PUTs)
    have gone through, every further PUT is answered with 500 until `heal()`:
    the store "breaks" in the middle of a build.  Listing and deleting still
    work, as they do when a store's write path fails.
    """

    def __init__(self, upstream: str, fail_after: int, corrupt: str = "") -> None:
        import http.server
        import threading
        import urllib.parse

        self.upstream = urllib.parse.urlsplit(upstream)
        self.fail_after = fail_after
        # The first PUT whose path ends with `corrupt` gets one byte flipped in transit.
        self.corrupt = corrupt
        self.corrupted = 0
        self.puts = 0
        self.failed = 0
        self.healed = False
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def read_body(self) -> bytes:
                """The request body as sent, chunked framing (aws-chunked uploads) kept."""
                if "chunked" not in self.headers.get("Transfer-Encoding", ""):
                    length = int(self.headers.get("Content-Length") or 0)
                    return self.rfile.read(length) if length else b""
                raw = b""
                while True:
                    line = self.rfile.readline()
                    raw += line
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while True:
                            trailer = self.rfile.readline()
                            raw += trailer
                            if trailer in (b"\r\n", b"\n", b""):
                                return raw
                    raw += self.rfile.read(size + 2)

            def forward(self) -> None:
                import http.client

                body = self.read_body()
                if (
                    proxy.corrupt
                    and self.command == "PUT"
                    and self.path.split("?")[0].endswith(proxy.corrupt)
                ):
                    with proxy.lock:
                        flip = proxy.corrupted == 0
                        proxy.corrupted += 1
                    if flip and len(body) > 1000:
                        middle = len(body) // 2
                        body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
                if self.command == "PUT":
                    with proxy.lock:
                        broken = not proxy.healed and proxy.puts >= proxy.fail_after
                        if broken:
                            proxy.failed += 1
                        else:
                            proxy.puts += 1
                    if broken:
                        payload = (
                            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError'
                            b"</Code><Message>injected failure</Message></Error>"
                        )
                        self.send_response(500)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = proxy.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                # A HEAD reply has no body but the length of the object.
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def heal(self) -> None:
        with self.lock:
            self.healed = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing_proxy(moto_url: str) -> Iterator[Callable[..., FailingProxy]]:
    made: list[FailingProxy] = []

    def factory(fail_after: int, corrupt: str = "") -> FailingProxy:
        proxy = FailingProxy(moto_url, fail_after, corrupt)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        proxy.close()


class Helpers:
    """Constants and helpers the test modules share (conftest is not importable)."""

    outversion = OUTVERSION
    publish_path = PUBLISH_PATH
    fast = FAST
    list_keys = staticmethod(list_keys)
    s3_client = staticmethod(s3_client)


@pytest.fixture
def pub() -> Helpers:
    return Helpers()
