"""What a Flatpak remote offers, read from its signed summary.

The summary lists every ref with its commit and, in Flatpak's `xa.cache`,
the exact installed and download sizes and the ref's metadata (runtime,
extensions, extra data). Reading it (and checking its signature against the
remote's key) lets the policies run and `eib apps` report sizes without
touching any installation.
"""

from __future__ import annotations

import configparser
import io
import logging
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from eib.errors import BuildError
from eib.flatpak.gvariant import GVariantError, be64, decode
from eib.flatpak.remotes import RemoteConfig
from eib.network import NetworkLimits, copy_limited
from eib.tools.run import run

log = logging.getLogger("eib.flatpak")

SUMMARY_TYPE = "(a(s(taya{sv}))a{sv})"


def _error(message: str) -> BuildError:
    return BuildError(message, stage="image", step="flatpak")


@dataclass(frozen=True)
class RefInfo:
    """One ref on a remote, as its summary describes it."""

    remote: str
    ref: str
    commit: str
    installed_size: int
    download_size: int
    metadata: str = ""
    extra_data_size: int = 0

    @property
    def kind(self) -> str:
        return self.ref.split("/")[0]

    @property
    def name(self) -> str:
        return self.ref.split("/")[1]

    @property
    def arch(self) -> str:
        return self.ref.split("/")[2]

    @property
    def branch(self) -> str:
        return self.ref.split("/")[3]

    def keyfile(self) -> configparser.ConfigParser:
        """The ref's metadata as a key file (empty when the summary carries none)."""
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(self.metadata)
        except configparser.Error as err:
            raise _error(f"{self.ref} on '{self.remote}' has unreadable metadata: {err}") from err
        return parser

    @property
    def has_extra_data(self) -> bool:
        return self.extra_data_size > 0 or self.keyfile().has_section("Extra Data")


@dataclass
class RemoteSummary:
    """Every Flatpak ref a remote offers (appstream and OSTree-only refs left out)."""

    remote: str
    url: str
    refs: dict[str, RefInfo] = field(default_factory=dict)
    all_refs: set[str] = field(default_factory=set)
    default_branch: str = ""

    def find(self, kind: str, name: str, arch: str) -> list[RefInfo]:
        return [
            r for r in self.refs.values() if (r.kind, r.name, r.arch) == (kind, name, arch)
        ]

    def names(self, kind: str, arch: str) -> set[str]:
        return {r.name for r in self.refs.values() if r.kind == kind and r.arch == arch}

    def appstream_ref(self, arch: str) -> str | None:
        return f"appstream2/{arch}" if f"appstream2/{arch}" in self.all_refs else None


def _fetch(url: str) -> bytes | None:
    try:
        limits = NetworkLimits.from_env()
        deadline = limits.start()
        with urllib.request.urlopen(url, timeout=limits.socket_timeout) as resp:
            body = io.BytesIO()
            copy_limited(resp, body, deadline, f"fetching {url}")
            return body.getvalue()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise _error(f"cannot fetch {url}: {err}") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, FileNotFoundError):
            return None
        raise _error(f"cannot fetch {url}: {err}") from err
    except OSError as err:
        raise _error(f"cannot fetch {url}: {err}") from err


def _url(base: str, name: str) -> str:
    if "://" not in base:
        base = Path(base).resolve().as_uri()
    return f"{base.rstrip('/')}/{name}"


def verify_summary(remote: RemoteConfig, summary: bytes, signatures: bytes | None) -> None:
    """Fail unless one of the summary's signatures is good for the remote's key."""
    if remote.gpg_key is None:
        log.warning("remote '%s' has no GPG key: its metadata is not verified", remote.name)
        return
    if signatures is None:
        raise _error(f"remote '{remote.name}' has no summary signature ({remote.url})")
    try:
        sigs = decode(signatures, "a{sv}").get("ostree.gpgsigs", [])
    except GVariantError as err:
        raise _error(f"remote '{remote.name}': unreadable summary.sig: {err}") from err
    with tempfile.TemporaryDirectory(prefix="eib-gpg-") as tmp:
        home = Path(tmp)
        home.chmod(0o700)
        (home / "key").write_bytes(remote.gpg_key)
        (home / "summary").write_bytes(summary)
        gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--quiet"]
        imported = run([*gpg, "--import", str(home / "key")], check=False)
        if imported.returncode != 0:
            raise _error(
                f"remote '{remote.name}': its GPG key cannot be imported: "
                + imported.stderr.strip()
            )
        for index, sig in enumerate(sigs):
            sig_path = home / f"sig{index}"
            sig_path.write_bytes(bytes(sig))
            proc = run(
                [*gpg, "--status-fd", "1", "--verify", str(sig_path), str(home / "summary")],
                check=False,
            )
            if "[GNUPG:] VALIDSIG" in proc.stdout:
                return
    raise _error(f"remote '{remote.name}': summary signature is not valid for its GPG key")


def parse_summary(remote: str, url: str, data: bytes) -> RemoteSummary:
    try:
        refs, meta = decode(data, SUMMARY_TYPE)
    except (GVariantError, ValueError) as err:
        raise _error(f"remote '{remote}': unreadable summary: {err}") from err
    cache = meta.get("xa.cache", {})
    sparse = meta.get("xa.sparse-cache", {})
    summary = RemoteSummary(remote, url, default_branch=str(meta.get("xa.default-branch", "")))
    for ref, (_size, checksum, _meta) in refs:
        summary.all_refs.add(ref)
        if not ref.startswith(("app/", "runtime/")) or ref.count("/") != 3:
            continue
        installed, download, metadata = cache.get(ref, (0, 0, ""))
        eds = sparse.get(ref, {}).get("eds")
        summary.refs[ref] = RefInfo(
            remote=remote,
            ref=ref,
            commit=bytes(checksum).hex(),
            installed_size=be64(installed),
            download_size=be64(download),
            metadata=metadata,
            extra_data_size=int(eds[1]) if eds else 0,
        )
    return summary


def fetch_summary(remote: RemoteConfig) -> RemoteSummary:
    """Download, verify and read one remote's summary."""
    data = _fetch(_url(remote.url, "summary"))
    if data is None:
        raise _error(f"remote '{remote.name}' has no summary at {remote.url}")
    signatures = _fetch(_url(remote.url, "summary.sig"))
    verify_summary(remote, data, signatures)
    summary = parse_summary(remote.name, remote.url, data)
    log.info("remote '%s': %d refs", remote.name, len(summary.refs))
    return summary
