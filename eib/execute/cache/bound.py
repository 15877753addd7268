"""How large the stage cache may grow, and keeping it there.

Every unpinned build stores new stage results (a compressed image each), so
without a bound the cache fills its disk. After each build the least
recently used entries are evicted until the store fits: by default 20 % of
the cache's file system, or `EIB_CACHE_MAX_SIZE` (a size such as `2G`, or
a share such as `10%`).
"""

from __future__ import annotations

import os
from pathlib import Path

from eib.errors import UserError
from eib.execute.cache.store import CacheEntry, gc, parse_size

MAX_SIZE_ENV = "EIB_CACHE_MAX_SIZE"
DEFAULT_SHARE = 20.0


def _filesystem_size(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_frsize * st.f_blocks


def max_size(cache: Path, text: str | None = None) -> int:
    """The bound in bytes: `text` (or $EIB_CACHE_MAX_SIZE) as a size or a `N%` share."""
    key = "--max-size" if text is not None else MAX_SIZE_ENV
    text = (text if text is not None else os.environ.get(MAX_SIZE_ENV, "")).strip()
    if not text:
        return int(_filesystem_size(cache) * DEFAULT_SHARE / 100)
    if text.endswith("%"):
        try:
            share = float(text[:-1])
        except ValueError:
            share = -1.0
        if not 0 <= share <= 100:
            raise UserError(f"not a share of the file system: {text!r}", key=key,
                            hint="e.g. 20%")
        return int(_filesystem_size(cache) * share / 100)
    try:
        return parse_size(text)
    except UserError as err:
        raise UserError(err.message, key=key, hint="e.g. 500M, 2G or 20%") from None


def keep_bounded(cache: Path, limit: int) -> tuple[list[CacheEntry], int]:
    """Evict least recently used entries (and stale temporary dirs) beyond `limit`."""
    return gc(cache, limit)
