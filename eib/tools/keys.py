"""Public GPG keys as the tools want them: files.

A plan carries keys by content (armoured text, or base64 of a binary key as
`.flatpakrepo` files give them); ostree, flatpak and gpg all take files, so
each key is written into a scratch dir.  One place, so the build and
`eib lock` read keys the same way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path

from eib.errors import UserError

ARMOR_HEADER = "-----BEGIN PGP PUBLIC KEY BLOCK-----"


def is_armored(material: str) -> bool:
    return material.lstrip().startswith(ARMOR_HEADER)


def key_bytes(material: str, *, key: str = "gpg key") -> bytes:
    """The bytes of carried key material (what gpg, ostree and flatpak import)."""
    if is_armored(material):
        return material.encode()
    try:
        return base64.b64decode("".join(material.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UserError("not an armoured or base64 GPG key", key=key) from None


def insecure_location(location: str) -> bool:
    """A URL other than https:// or file:// (http, ftp, …): anyone on the path may alter it.

    Keys and `.flatpakrepo` files are what everything else is verified with.
    """
    text = location.strip().lower()
    return "://" in text and not text.startswith(("https://", "file://"))


def key_files(keys: Sequence[str], scratch: Path, *, key: str = "ostree.gpg_keys") -> list[Path]:
    """Each carried key written to `scratch` as a file, in order."""
    files: list[Path] = []
    for index, material in enumerate(keys):
        path = scratch / f"key{index}.{'asc' if is_armored(material) else 'gpg'}"
        path.write_bytes(key_bytes(material, key=f"{key}[{index}]"))
        files.append(path)
    return files
