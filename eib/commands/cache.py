"""`eib cache ls|gc|explain`: show, bound and explain the stage cache."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eib.compile.compiler import CompileRequest

def cache_root(cache_dir: Path | None) -> Path:
    from eib.paths import cache_dir as chosen_cache_dir

    return chosen_cache_dir(cache_dir)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{seconds:.0f}s"


def run_cache_ls(cache_dir: Path | None, *, as_json: bool) -> None:
    from eib.execute.cache import entries

    cache = cache_root(cache_dir)
    now = time.time()
    rows = [
        {"stage": e.stage, "key": e.key, "size": e.size(), "created": int(e.created),
         "last_used": int(e.last_used), "path": str(e.path)}
        for e in sorted(entries(cache), key=lambda e: (e.stage, -e.last_used, e.key))
    ]
    if as_json:
        total = sum(int(r["size"]) for r in rows)  # type: ignore[call-overload]
        sys.stdout.write(json.dumps({"cache": str(cache), "entries": rows, "total_size": total},
                                    indent=2, sort_keys=True) + "\n")
        return
    if not rows:
        sys.stdout.write(f"no cached stage results in {cache}\n")
        return
    sys.stdout.write(f"{'STAGE':<9} {'KEY':<12}  {'SIZE':>10}  {'AGE':>5}  {'USED':>5}\n")
    total = 0
    for row in rows:
        size = int(row["size"])  # type: ignore[call-overload]
        total += size
        sys.stdout.write(
            f"{row['stage']!s:<9} {str(row['key'])[:12]}  {human_size(size):>10}  "
            f"{human_age(now - float(row['created'])):>5}  "  # type: ignore[arg-type]
            f"{human_age(now - float(row['last_used'])):>5}\n"  # type: ignore[arg-type]
        )
    sys.stdout.write(f"{len(rows)} entries, {human_size(total)} in {cache}\n")


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def run_cache_gc(cache_dir: Path | None, max_size: str) -> None:
    from eib.execute.buildroot import prune_checkouts
    from eib.execute.cache import gc, parse_size
    from eib.execute.exclusive import cache_lock
    from eib.execute.reclaim import reclaim_stale_builds

    limit = parse_size(max_size)
    cache = cache_root(cache_dir)
    if not cache.is_dir():
        sys.stdout.write(f"no cache at {cache}\n")
        return
    with cache_lock(cache, None, on_wait=_say):
        # What killed builds left (processes, mounts under their work dirs) goes first.
        reclaim_stale_builds()
        evicted, left = gc(cache, limit)
        pruned = prune_checkouts(cache)
    for commit in pruned:
        sys.stdout.write(f"removed the buildroot of {commit[:12]}, gone from the cache repo\n")
    for entry in evicted:
        sys.stdout.write(f"evicted {entry.stage} {entry.key[:12]}\n")
    sys.stdout.write(f"{len(evicted)} evicted, {human_size(left)} kept (limit "
                     f"{human_size(limit)})\n")


def run_cache_explain(request: CompileRequest, *, cache_dir: Path | None) -> None:
    """Say, per stage, whether a build of the request would reuse the cache, and why not.

    The request is compiled exactly as `eib plan` and `eib run` compile it (a
    lock pins the commits and the build time), so the keys explained are the
    keys those builds use."""
    from eib.compile.compiler import compile_plan
    from eib.execute.cache import explain_all

    cache = cache_root(cache_dir)
    sys.stdout.write(explain_all(compile_plan(request).plan, cache_dir=cache))
