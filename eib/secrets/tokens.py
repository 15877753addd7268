"""`<secret:NAME>`: how a plan stands for a private value it must not hold.

A plan keeps a token wherever a secret, or a value built from one, would
appear (a pull URL with a password, `EIB_IMAGE_SIGNING_KEYID`, a legacy
option that interpolates a private one), so it can be shown, saved and
published as it is; the executor reveals tokens only at the point of use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_TOKEN = re.compile(r"<secret:([^<>\s]+)>")


def token(name: str) -> str:
    return f"<secret:{name}>"


def names_in(text: str) -> set[str]:
    return set(_TOKEN.findall(text))


def reveal(text: str, value_of: Callable[[str], str] | Mapping[str, str]) -> str:
    """`text` with each token replaced by its secret's value."""
    get = value_of.__getitem__ if isinstance(value_of, Mapping) else value_of
    return _TOKEN.sub(lambda m: get(m.group(1)), text)
