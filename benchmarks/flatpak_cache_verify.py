#!/usr/bin/env python3
"""Benchmark: what checking the Flatpak content cache costs on a cache hit.

A cache hit used to read a file and send it; now the file's checksum is
checked first (`eib.flatpak.objects.verify`). On an archive repo
(default: the demo's Flatpak repo in the cache dir), time:

* floor: reading every object and summary shard once (what serving costs);
* verify: checking every one against its name.

Prints the ratio verify / floor and writes JSON with `--json`.
Usage: benchmarks/flatpak_cache_verify.py [--repo DIR] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SRC))

from eib.flatpak.objects import verifiable, verify  # noqa: E402

DEFAULT_REPO = Path("/var/cache/eib/demo/serve/flatpak")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    files = [(p.relative_to(args.repo).as_posix(), p) for p in sorted(args.repo.rglob("*"))
             if p.is_file() and verifiable(p.relative_to(args.repo).as_posix())]
    if not files:
        print(f"no objects under {args.repo} (build the demo: eib demo-os)", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for _, p in files)

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    floor = best(lambda: [p.read_bytes() for _, p in files])
    checked = best(lambda: [verify(rel, p) for rel, p in files])
    assert all(verify(rel, p) for rel, p in files), "the repo has a bad object"
    result = {"repo": str(args.repo), "files": len(files), "bytes": size,
              "read_s": floor, "verify_s": checked, "ratio": checked / floor}
    print(f"{len(files)} files, {size / 1e6:.1f} MB in {args.repo}")
    print(f"{'read (floor)':<14}{floor * 1000:9.1f} ms")
    print(f"{'verify':<14}{checked * 1000:9.1f} ms   {checked / floor:5.1f}x the floor")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
