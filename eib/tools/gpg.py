"""Detached armoured signatures with python-gnupg.

Two python-gnupg 0.5 traps are avoided here: `passphrase=None` for keys
without one (an empty string makes gpg read the data's first bytes as the
passphrase and write a BAD signature), and an open file object rather than a
path (a path can yield a truncated, BAD signature while reporting success).
The data is streamed, so a signature can be made while the data is still
being produced (from a pipe).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from eib.errors import BuildError

log = logging.getLogger("eib.tools")


class Signer:
    """Signs with one key from one keyring directory."""

    def __init__(self, keyid: str, homedir: str | Path | None) -> None:
        import gnupg

        self.keyid = keyid
        self.homedir = str(homedir) if homedir else None
        try:
            self._gpg = gnupg.GPG(gnupghome=self.homedir)
        except (OSError, ValueError) as err:
            raise BuildError(f"cannot start gpg with keyring dir {self.homedir}: {err}") from err
        if not self._gpg.list_keys(secret=True, keys=[keyid]):
            where = self.homedir or "~/.gnupg"
            raise BuildError(f"signing key '{keyid}' is not in the secret keyring of {where}")

    def sign_stream(self, data: IO[bytes], output: Path) -> None:
        """Read `data` to its end and write the detached signature to `output`."""
        log.debug("gpg --detach-sign --armor --local-user %s > %s", self.keyid, output)
        result = self._gpg.sign_file(
            data,
            keyid=self.keyid,
            detach=True,
            binary=False,
            passphrase=None,
            output=str(output),
        )
        if not result.fingerprint or not output.is_file() or output.stat().st_size == 0:
            detail = (getattr(result, "stderr", "") or "").strip().splitlines()[-3:]
            raise BuildError(f"signing {output.name} failed: {' '.join(detail)}")

    def sign_file(self, path: Path, output: Path | None = None) -> Path:
        """Sign a finished file; the signature goes to `<path>.asc` by default."""
        out = output or path.with_name(path.name + ".asc")
        with path.open("rb") as data:
            self.sign_stream(data, out)
        return out
