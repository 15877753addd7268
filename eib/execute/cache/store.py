"""The stage cache's store: content-addressed stage results on disk.

Layout: `<cache>/stages/<stage>/<key>/` holding `inputs.json`, `files/` (the
stage's result) and `used` (its mtime is the last use, for LRU eviction).
Entries are written to a temporary sibling and renamed into place, so a
crashed build never leaves a half entry that a later build would trust.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eib.errors import BuildError, UserError
from eib.execute.cache.keys import stage_key
from eib.execute.diskfull import no_space
from eib.model.plan import Plan
from eib.tools.owned import alive, identity
from eib.tools.run import run

log = logging.getLogger("eib.execute.cache")

STAGES_DIR = "stages"
INPUTS_FILE = "inputs.json"
USED_FILE = "used"
FILES_DIR = "files"
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class CacheEntry:
    """One stored stage result."""

    stage: str
    key: str
    path: Path

    @property
    def files(self) -> Path:
        return self.path / FILES_DIR

    def file(self, name: str) -> Path:
        return self.files / name

    def inputs(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / INPUTS_FILE).read_text())
        return data

    @property
    def created(self) -> float:
        return (self.path / INPUTS_FILE).stat().st_mtime

    @property
    def last_used(self) -> float:
        try:
            return (self.path / USED_FILE).stat().st_mtime
        except FileNotFoundError:
            return self.created

    def size(self) -> int:
        return disk_usage(self.path)


def stages_root(cache: Path) -> Path:
    return cache / STAGES_DIR


def entry_dir(cache: Path, stage: str, key: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise ValueError(f"not a stage key: {key!r}")
    return stages_root(cache) / stage / key


def disk_usage(path: Path) -> int:
    """Bytes allocated below `path` (sparse images count what they use; hard links once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def touch(entry: CacheEntry) -> None:
    (entry.path / USED_FILE).touch()
    os.utime(entry.path / USED_FILE)


def lookup(cache: Path, stage: str, key: str) -> CacheEntry | None:
    """The entry for `key`, marked as just used, or None."""
    path = entry_dir(cache, stage, key)
    if not (path / INPUTS_FILE).is_file():
        return None
    entry = CacheEntry(stage, key, path)
    touch(entry)
    log.info("cache hit: %s %s", stage, key[:12])
    return entry


def _copy(source: Path, dest: Path) -> None:
    """Copy a file or tree keeping modes, links, holes (and reflinking when the fs can)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        run(["cp", "-a", "--reflink=auto", "--sparse=always", str(source), str(dest)])
    except BuildError as err:
        if "No space left on device" in err.message:
            raise no_space(dest) from None
        raise


def store(
    cache: Path,
    stage: str,
    key: str,
    inputs: Mapping[str, Any],
    files: Mapping[str, Path],
    *,
    skip: Collection[str] = (),
) -> CacheEntry:
    """File a stage result under its key: `files` maps names in the entry to sources.

    `skip` names top-level members of stored directories that are not part
    of the result (e.g. the output dir's `build.txt`, which every build writes
    itself, or the files an earlier stage made); it is read only now, after
    the stage ran.  Written to a temporary directory and renamed into place; when
    another build stored the same key meanwhile, its (identical) entry is kept.
    """
    final = entry_dir(cache, stage, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{key}-{identity(os.getpid())}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / FILES_DIR).mkdir(parents=True)
        for name, source in sorted(files.items()):
            target = tmp / FILES_DIR / name
            if not target.resolve().is_relative_to((tmp / FILES_DIR).resolve()):
                raise ValueError(f"cache file name {name!r} leaves the entry")
            if source.is_dir() and not source.is_symlink() and skip:
                # Member by member: a skipped member (an image an earlier
                # stage's entry holds already) is never copied at all.
                target.mkdir(parents=True)
                for member in sorted(source.iterdir()):
                    if member.name not in skip:
                        _copy(member, target / member.name)
            else:
                _copy(source, target)
        (tmp / INPUTS_FILE).write_text(json.dumps(inputs, sort_keys=True, indent=2) + "\n")
        (tmp / USED_FILE).touch()
        if final.exists():
            shutil.rmtree(tmp)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("cache store: %s %s", stage, key[:12])
    entry = CacheEntry(stage, key, final)
    touch(entry)
    return entry


def restore(entry: CacheEntry, name: str, dest: Path) -> None:
    """Copy one stored file or tree of `entry` to `dest` (which must not exist yet)."""
    source = entry.file(name)
    if not source.exists() and not source.is_symlink():
        raise FileNotFoundError(f"{entry.stage} cache entry {entry.key[:12]} has no {name}")
    _copy(source, dest)


def restore_into(entry: CacheEntry, name: str, dest: Path) -> None:
    """Like `restore`, but a stored directory is merged into an existing `dest` directory
    and a stored file replaces an existing `dest` file."""
    source = entry.file(name)
    if source.is_dir() and dest.is_dir():
        run(["cp", "-a", "--reflink=auto", "--sparse=always", f"{source}/.", str(dest)])
        return
    if dest.is_file() or dest.is_symlink():
        dest.unlink()
    restore(entry, name, dest)


def cached_stage(
    cache: Path,
    plan: Plan,
    stage: str,
    inputs: Mapping[str, Any] | None,
    outputs: Mapping[str, Path],
    run_stage: Callable[[], object],
    *,
    still_valid: Callable[[CacheEntry], bool] | None = None,
    skip: Collection[str] = (),
) -> tuple[str, bool]:
    """Run a stage through the cache: (key, hit).

    On a hit, every stored output is copied back to its path in `outputs`
    (directories merged into existing ones) and `run_stage` is not called;
    on a miss `run_stage()` runs and `outputs` are stored under the key.
    `still_valid` may refuse a hit whose result depends on something outside
    the entry (e.g. the ostree stage's commit must still be in the cache
    repo); a refused entry is replaced.  `skip`: see `store`.
    """
    key, data = stage_key(plan, stage, inputs)
    entry = lookup(cache, stage, key)
    if entry is not None and (still_valid is None or still_valid(entry)):
        for name, path in sorted(outputs.items()):
            if entry.file(name).exists() or entry.file(name).is_symlink():
                restore_into(entry, name, path)
        return key, True
    if entry is not None:
        log.info("cache entry %s %s is no longer valid; rebuilding", stage, key[:12])
        shutil.rmtree(entry.path)
    run_stage()
    store(cache, stage, key, data, {n: p for n, p in outputs.items() if p.exists()}, skip=skip)
    return key, False


def entries(cache: Path, stage: str | None = None) -> list[CacheEntry]:
    """Every complete entry (temporary dirs of running or crashed stores left out)."""
    root = stages_root(cache)
    found: list[CacheEntry] = []
    stage_dirs = [root / stage] if stage else sorted(p for p in root.glob("*") if p.is_dir())
    for stage_dir in stage_dirs:
        if not stage_dir.is_dir():
            continue
        for path in sorted(stage_dir.iterdir()):
            if path.name.startswith(TMP_PREFIX) or not (path / INPUTS_FILE).is_file():
                continue
            found.append(CacheEntry(stage_dir.name, path.name, path))
    return found


def reclaim_temporaries(cache: Path) -> None:
    """Remove the temporary entries of stores whose build is gone (killed halfway).

    Named `<key>-<pid>.<start time>`, so a reused pid does not keep one alive.
    """
    for tmp in stages_root(cache).glob(f"*/{TMP_PREFIX}*"):
        owner = tmp.name.rsplit("-", 1)[-1]
        if "." in owner and alive(owner):
            continue
        if "." not in owner and owner.isdigit() and Path(f"/proc/{owner}").exists():
            continue
        log.info("removing %s, left by a build that is gone", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def gc(cache: Path, max_size: int) -> tuple[list[CacheEntry], int]:
    """Evict least recently used entries until the store fits in `max_size` bytes.

    Returns the evicted entries and the size left.  Stale temporary dirs of
    crashed stores go first.
    """
    reclaim_temporaries(cache)
    sized = [(entry, entry.size()) for entry in entries(cache)]
    total = sum(size for _, size in sized)
    evicted: list[CacheEntry] = []
    for entry, size in sorted(sized, key=lambda pair: (pair[0].last_used, pair[0].created)):
        if total <= max_size:
            break
        shutil.rmtree(entry.path)
        total -= size
        evicted.append(entry)
        log.info("cache evict: %s %s (%d bytes)", entry.stage, entry.key[:12], size)
    return evicted, total


def parse_size(text: str) -> int:
    """`1048576`, `512K`, `300M`, `2G`, `1T` (powers of 1024) → bytes; UserError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.I)
    if match is None:
        raise UserError(f"not a size: {text!r}", key="--max-size", hint="e.g. 500M or 2G")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(match.group(1)) * scale[match.group(2).upper()]
