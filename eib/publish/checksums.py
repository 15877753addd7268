"""SHA256SUMS: one list of every published file, signed when a key is set.

The list uses `sha256sum`'s format so that downloaders check a build with
`sha256sum -c SHA256SUMS` and `gpg --verify SHA256SUMS.asc SHA256SUMS`
(or `SHA256SUMS.gpg`, the same signature under the legacy builder's name).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from eib.errors import BuildError

log = logging.getLogger("eib.publish")

SUMS_NAME = "SHA256SUMS"
SIGNATURE_NAME = "SHA256SUMS.asc"
# The legacy builder's name for the same armoured signature.
LEGACY_SIGNATURE_NAME = "SHA256SUMS.gpg"


def sums_text(entries: Iterable[tuple[str, str]]) -> str:
    """`<sha256>  <name>` lines sorted by name, as `sha256sum` prints them."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))


def write_sums(path: Path, entries: Iterable[tuple[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(sums_text(entries), encoding="utf-8")
    tmp.replace(path)


def sign_detached(path: Path, signature: Path, keyid: str, gpg_homedir: str) -> None:
    """Write an armoured detached signature of `path` and check that it verifies.

    python-gnupg can report success for a bad signature, so the signature is
    verified against the file before it replaces an older one.
    """
    import gnupg

    from eib.tools.gpg import Signer

    tmp = signature.with_name(signature.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        Signer(keyid, gpg_homedir or None).sign_file(path, tmp)
        with tmp.open("rb") as sig:
            verified = gnupg.GPG(gnupghome=gpg_homedir or None).verify_file(
                sig, data_filename=str(path)
            )
        if not verified.valid:
            raise BuildError(
                f"the signature of {path.name} made with key {keyid} does not verify "
                f"({verified.status})",
                stage="publish",
                step="checksums",
            )
    except BuildError as err:
        tmp.unlink(missing_ok=True)
        if err.stage is None:
            raise BuildError(err.message, stage="publish", step="checksums") from err
        raise
    tmp.replace(signature)
    log.info("signed %s with key %s", path.name, keyid)


def copy_signature(signature: Path, dest: Path) -> None:
    """`dest` holding the same bytes as `signature`, replaced whole."""
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(signature.read_bytes())
    tmp.replace(dest)
