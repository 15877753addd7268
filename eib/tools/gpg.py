"""Detached armoured signatures with python-gnupg.

Two python-gnupg 0.5 traps are avoided here: `passphrase=None` for keys
without one (an empty string makes gpg read the data's first bytes as the
passphrase and write a BAD signature), and an open file object rather than a
path (a path can yield a truncated, BAD signature while reporting success).
The data is streamed, so a signature can be made while the data is still
being produced (from a pipe).

The gpg processes are the build's like every other tool's (`eib.tools.owned`,
`eib.tools.run.track`): they die with eib, carry its owner mark and are
ended at once by a signal, which also frees a thread blocked feeding one.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import IO, Any

from eib.errors import BuildError
from eib.tools import owned
from eib.tools.run import track, untrack

log = logging.getLogger("eib.tools")


def _owned_gpg_class() -> type[Any]:
    """python-gnupg's `GPG`, its processes started and tracked as the build's tools."""
    import gnupg

    class OwnedGPG(gnupg.GPG):  # type: ignore[misc]
        _owning = False  # the constructor's own `gpg --list-config` is waited for there

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._owning = True

        def _open_subprocess(self, args: Any, passphrase: bool = False) -> Any:
            if not self._owning:
                return super()._open_subprocess(args, passphrase)
            cmd = self.make_args(args, passphrase)
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=owned.child_env(self.env), preexec_fn=owned.preexec(),
            )
            owned.spawned(proc.pid)
            track(proc)
            return proc

        def _collect_output(self, process: Any, result: Any, writer: Any = None,
                            stdin: Any = None) -> Any:
            try:
                return super()._collect_output(process, result, writer, stdin)
            finally:
                if self._owning:
                    untrack(process)
                    if process.returncode is not None:
                        owned.reaped(process.pid)

    return OwnedGPG


class Signer:
    """Signs with one key from one keyring directory."""

    def __init__(self, keyid: str, homedir: str | Path | None) -> None:
        self.keyid = keyid
        self.homedir = str(homedir) if homedir else None
        try:
            self._gpg = _owned_gpg_class()(gnupghome=self.homedir)
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
