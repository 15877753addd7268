"""Public GPG keys as the tools want them: files.

A recipe names a key by path or gives the armoured text inline; ostree,
flatpak and gpg all take files, so inline keys are written into a scratch
dir.  One place, so the build and `eib lock` read keys the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eib.errors import UserError

ARMOR_HEADER = "-----BEGIN PGP PUBLIC KEY BLOCK-----"


def insecure_location(location: str) -> bool:
    """A URL other than https:// or file:// (http, ftp, …): anyone on the path may alter it.

    Keys and `.flatpakrepo` files are what everything else is verified with.
    """
    text = location.strip().lower()
    return "://" in text and not text.startswith(("https://", "file://"))


def key_files(keys: Sequence[str], scratch: Path, *, key: str = "ostree.gpg_keys") -> list[Path]:
    """`keys` as files: paths as they are (they must exist), inline keys written out."""
    files: list[Path] = []
    for index, text in enumerate(keys):
        if text.lstrip().startswith(ARMOR_HEADER):
            path = scratch / f"key{index}.asc"
            path.write_text(text)
        else:
            path = Path(text)
            if not path.is_file():
                raise UserError(f"GPG key file {path} does not exist", key=key)
        files.append(path)
    return files
