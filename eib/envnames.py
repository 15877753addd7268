"""How a config option is named and written in the `EIB_*` environment hooks read.

Named exactly as the legacy builder did: `EIB_<SECTION>_<OPTION>` upper-cased
with characters outside `A-Z0-9_` turned into `_`, `[build]` options without
the section; `true`/`false` lower case; lists newline-joined like merged INI
options.  INI trees, YAML recipes, the executor and the redaction of private
values all use these two functions, so a hook sees the same names whichever
format the build was written in.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Z0-9_]")
BUILD_SECTION = "build"


def env_name(section: str, option: str) -> str:
    """`[image] icon_grid` → `EIB_IMAGE_ICON_GRID`; `[build] product` → `EIB_PRODUCT`."""
    name = option if section == BUILD_SECTION else f"{section}_{option}"
    return "EIB_" + _UNSAFE.sub("_", name.upper())


def env_value(value: Any) -> str:
    """A value as the legacy builder exported it (`True`/`FALSE` → `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(env_value(v) for v in value)
    return str(value)
