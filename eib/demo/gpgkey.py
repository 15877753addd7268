"""The demo's throwaway signing key.

Made once per demo directory in its own `GNUPGHOME` (never the user's
keyring), without a passphrase, so the demo repos are signed like real ones
and builds exercise GPG verification end to end.  The agent that gpg and
ostree start for that home is stopped after each use so no process outlives
the build.
"""

from __future__ import annotations

import re
from pathlib import Path

from eib.errors import BuildError
from eib.tools.run import run

KEY_UID = "EIB Demo OS <demo@eib.invalid>"

_KEY_PARAMS = """%no-protection
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Name-Real: EIB Demo OS
Name-Email: demo@eib.invalid
Expire-Date: 0
%commit
"""


def _gpg(homedir: Path, *args: str | Path, input: str | None = None) -> str:
    return run(["gpg", "--batch", "--homedir", homedir, *args], input=input).stdout


def stop_agent(homedir: Path) -> None:
    """Stop the gpg-agent (and friends) serving `homedir`, if any runs."""
    run(["gpgconf", "--homedir", homedir, "--kill", "all"], check=False)


def key_fingerprint(homedir: Path) -> str | None:
    """The fingerprint of the demo key in `homedir`, or None.  Reads the
    public keyring, which needs no agent."""
    if not homedir.is_dir():
        return None
    out = run(
        ["gpg", "--batch", "--homedir", homedir, "--with-colons", "--list-keys"],
        check=False,
    ).stdout
    fingerprints = re.findall(r"^fpr:+([0-9A-F]{40}):", out or "", flags=re.M)
    return fingerprints[0] if fingerprints else None


def ensure_key(homedir: Path) -> str:
    """The fingerprint of the demo key in `homedir`, generating it when absent."""
    found = key_fingerprint(homedir)
    if found is not None:
        return found
    homedir.mkdir(mode=0o700, parents=True, exist_ok=True)
    homedir.chmod(0o700)
    try:
        _gpg(homedir, "--gen-key", input=_KEY_PARAMS)
    finally:
        stop_agent(homedir)
    found = key_fingerprint(homedir)
    if found is None:
        raise BuildError(f"gpg made no key in {homedir}", stage="demo", step="gpg")
    return found


def export_public_key(homedir: Path, fingerprint: str, dest: Path) -> None:
    """Write the armoured public key to `dest` (what clients `--gpg-import`)."""
    armored = _gpg(homedir, "--armor", "--export", fingerprint)
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise BuildError(f"gpg exported no public key {fingerprint}", stage="demo", step="gpg")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(armored)
