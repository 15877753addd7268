"""The stage cache: content-addressed results of the ostree, image and manifest stages.

Like osbuild's store, a stage result is filed under the sha256 of the stage's
canonical inputs — the plan sections the stage reads, the hook files' sha256s,
the pinned or pulled OS commit, the versions of the tools it runs and eib's
own executor code — so an unchanged key means the stage would do exactly the
same work and its result can be reused.  Each key includes the previous
stage's key, so a change anywhere re-runs that stage and everything after it.

Every entry keeps its inputs as JSON beside the result: on a miss, `explain`
diffs the new inputs against the most recently used entry of that stage and
says *which* input changed (mkosi's cache-manifest idea), e.g.
`image: miss — hooks.image[2].sha256 changed: 1a2b3c4d… → 9f8e7d6c… (hooks/image/50-hostname)`.

Layout: `<cache>/stages/<stage>/<key>/` holding `inputs.json`, `files/` (the
stage's result) and `used` (its mtime is the last use, for LRU eviction).
Entries are written to a temporary sibling and renamed into place, so a
crashed build never leaves a half entry that a later build would trust.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eib.errors import UserError
from eib.model.plan import Plan
from eib.tools.run import run

log = logging.getLogger("eib.execute.cache")

CACHE_FORMAT = 1
STAGES_DIR = "stages"
CACHED_STAGES = ("ostree", "image", "manifest")
# Parts of a stage cached on their own: the Flatpak installation of the image
# stage does not depend on the OS tree or the hooks, so a hook change need not
# reinstall the apps.
CACHED_PARTS = ("flatpak",)
INPUTS_FILE = "inputs.json"
USED_FILE = "used"
FILES_DIR = "files"
TMP_PREFIX = ".tmp-"
PREVIOUS = {"image": "ostree", "manifest": "image"}
COMPRESSORS = {"gz": "pigz", "xz": "xz", "zstd": "zstd"}
# The version flag of each tool a stage runs.
VERSION_FLAGS = {
    "ostree": "--version",
    "flatpak": "--version",
    "mke2fs": "-V",
    "sfdisk": "--version",
    "mkfs.vfat": "--version",
    "mcopy": "--version",
    "pigz": "--version",
    "xz": "--version",
    "zstd": "--version",
    "qemu-img": "--version",
    "xorriso": "-version",
}
SOURCE_DIR = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- inputs and keys


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@functools.cache
def tool_version(tool: str) -> str:
    """The first line of `tool --version` that holds a number ('missing' when absent)."""
    if shutil.which(tool) is None:
        return "missing"
    proc = run([tool, VERSION_FLAGS.get(tool, "--version")], check=False, timeout=30)
    for line in ((proc.stdout or "") + "\n" + (proc.stderr or "")).splitlines():
        if re.search(r"\d", line):
            return line.strip()
    return "unknown"


@functools.lru_cache(maxsize=1)
def executor_digest() -> str:
    """sha256 over eib's executor and tool wrappers: new code means new results."""
    h = hashlib.sha256()
    for sub in ("execute", "flatpak", "tools"):
        for path in sorted((SOURCE_DIR / sub).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _file_digest(text: str) -> str:
    """sha256 of a key given inline or as a path (missing files hash as their path)."""
    if "BEGIN PGP" in text:
        return hashlib.sha256(text.encode()).hexdigest()
    path = Path(text)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return "missing:" + text


def _hooks(plan: Plan, groups: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return {
        group: [
            {"name": h.name, "sha256": h.sha256, "chroot": h.chroot, "executable": h.executable}
            for h in plan.hooks_of(group)
        ]
        for group in groups
    }


def _image_tools(plan: Plan) -> list[str]:
    tools = ["ostree", "mke2fs", "sfdisk", "mkfs.vfat", "mcopy"]
    tools.append(COMPRESSORS[plan.image.compression])
    if plan.flatpak.enable and plan.flatpak.remotes:
        tools.append("flatpak")
    if plan.image.qcow2 or plan.image.vm_image:
        tools.append("qemu-img")
    if plan.image.iso:
        tools.append("xorriso")
    return tools


def _eib(plan: Plan) -> dict[str, str]:
    return {"version": plan.eib_version, "executor_sha256": executor_digest()}


def _ostree_inputs(plan: Plan, runtime: Mapping[str, Any]) -> dict[str, Any]:
    o = plan.ostree
    return {
        "url": o.url,
        "ref": o.ref,
        "commit": o.commit or str(runtime.get("commit", "")),
        "remote": o.remote,
        "ref_deploy": o.ref_deploy,
        "gpg_keys_sha256": [_file_digest(k) for k in o.gpg_keys],
        "tools": {"ostree": tool_version("ostree")},
        "eib": _eib(plan),
    }


def _image_inputs(plan: Plan, runtime: Mapping[str, Any]) -> dict[str, Any]:
    data = plan.model_dump(mode="json", include={"build", "ostree", "image", "flatpak", "extra",
                                                 "env", "outputs", "secrets"})
    data["commit"] = plan.ostree.commit or str(runtime.get("commit", ""))
    data["flatpak_pins"] = runtime.get("flatpak_pins", {})
    data["hooks"] = _hooks(plan, ("content", "image"))
    data["tools"] = {tool: tool_version(tool) for tool in _image_tools(plan)}
    data["eib"] = _eib(plan)
    return data


def _manifest_inputs(plan: Plan, runtime: Mapping[str, Any]) -> dict[str, Any]:
    data = plan.model_dump(mode="json", include={"build", "env", "outputs", "extra"})
    data["hooks"] = _hooks(plan, ("manifest",))
    data["eib"] = _eib(plan)
    return data


def _flatpak_inputs(plan: Plan, runtime: Mapping[str, Any]) -> dict[str, Any]:
    """The Flatpak installation depends on the remotes, refs and pins, not on the OS tree."""
    remotes = {
        name: {**remote.model_dump(mode="json"), "gpg_key_sha256": _file_digest(remote.gpg_key)
               if remote.gpg_key else ""}
        for name, remote in plan.flatpak.remotes.items()
    }
    return {
        "flatpak": {**plan.flatpak.model_dump(mode="json", exclude={"remotes"}),
                    "remotes": remotes},
        "build_arch": plan.build.arch,
        "p2p": plan.ostree.p2p,
        "flatpak_pins": runtime.get("flatpak_pins", {}),
        "tools": {"flatpak": tool_version("flatpak")},
        "eib": _eib(plan),
    }


INPUTS = {
    "ostree": _ostree_inputs,
    "image": _image_inputs,
    "manifest": _manifest_inputs,
    "flatpak": _flatpak_inputs,
}


def stage_key(
    plan: Plan, stage: str, inputs: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """(key, canonical inputs) of `stage` for `plan`.

    `inputs` carries what is only known at run time: `commit` (the OS commit
    the ostree stage pulled, when the plan pins none), `flatpak_pins` and
    `previous` (the previous stage's key; computed from the same inputs when
    absent).  The key is `sha256` of the canonical JSON of the returned dict.
    """
    if stage not in INPUTS:
        raise ValueError(f"stage {stage!r} is not cached "
                         f"(cached: {', '.join((*CACHED_STAGES, *CACHED_PARTS))})")
    runtime = dict(inputs or {})
    data: dict[str, Any] = {"format": CACHE_FORMAT, "stage": stage}
    previous = PREVIOUS.get(stage)
    if previous is not None:
        data["previous"] = runtime.get("previous") or stage_key(
            plan, previous, {k: v for k, v in runtime.items() if k != "previous"}
        )[0]
    data.update(INPUTS[stage](plan, runtime))
    key = hashlib.sha256(canonical_json(data).encode()).hexdigest()
    return key, data


def stage_keys(plan: Plan, inputs: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The chained keys of every cached stage, in build order."""
    runtime = {k: v for k, v in (inputs or {}).items() if k != "previous"}
    keys: dict[str, str] = {}
    previous = ""
    for stage in CACHED_STAGES:
        key, _ = stage_key(plan, stage, {**runtime, "previous": previous} if previous else runtime)
        keys[stage] = previous = key
    return keys


def commit_known(plan: Plan, inputs: Mapping[str, Any] | None = None) -> bool:
    """Whether the OS commit is known before pulling (pinned, or given as a run-time input)."""
    return bool(plan.ostree.commit or (inputs or {}).get("commit"))


# ---------------------------------------------------------------- the store


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
    run(["cp", "-a", "--reflink=auto", "--sparse=always", str(source), str(dest)])


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
    itself).  Written to a temporary directory and renamed into place; when
    another build stored the same key meanwhile, its (identical) entry is kept.
    """
    final = entry_dir(cache, stage, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / FILES_DIR).mkdir(parents=True)
        for name, source in sorted(files.items()):
            target = tmp / FILES_DIR / name
            if not target.resolve().is_relative_to((tmp / FILES_DIR).resolve()):
                raise ValueError(f"cache file name {name!r} leaves the entry")
            _copy(source, target)
            for name_to_skip in skip:
                extra = target / name_to_skip
                if target.is_dir() and (extra.exists() or extra.is_symlink()):
                    if extra.is_dir() and not extra.is_symlink():
                        shutil.rmtree(extra)
                    else:
                        extra.unlink()
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


def gc(cache: Path, max_size: int) -> tuple[list[CacheEntry], int]:
    """Evict least recently used entries until the store fits in `max_size` bytes.

    Returns the evicted entries and the size left.  Stale temporary dirs of
    crashed stores go first.
    """
    root = stages_root(cache)
    for tmp in root.glob(f"*/{TMP_PREFIX}*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            shutil.rmtree(tmp, ignore_errors=True)
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


# ---------------------------------------------------------------- explain


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = {}
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        if not value and prefix:
            out[prefix] = []
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}[{index}]", out)
    else:
        out[prefix] = value


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    if re.fullmatch(r"[0-9a-f]{16,}", text):
        return text[:8] + "…"
    if len(text) > 60:
        return text[:57] + "…"
    return text or "''"


def _hook_name(inputs: Mapping[str, Any], path: str) -> str:
    match = re.match(r"hooks\.(\w+)\[(\d+)\]", path)
    if match is None:
        return ""
    group, index = match.group(1), int(match.group(2))
    hooks = inputs.get("hooks", {}).get(group, [])
    if index < len(hooks):
        return f" (hooks/{group}/{hooks[index]['name']})"
    return ""


def diff_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per changed input path, hooks named by their file."""
    flat_old: dict[str, Any] = {}
    flat_new: dict[str, Any] = {}
    _flatten(old, "", flat_old)
    _flatten(new, "", flat_new)
    lines: list[str] = []
    for path in sorted(set(flat_old) | set(flat_new)):
        before, after = flat_old.get(path), flat_new.get(path)
        if path in flat_old and path in flat_new and before == after:
            continue
        hook = _hook_name(new, path) or _hook_name(old, path)
        if path not in flat_old:
            lines.append(f"{path} added: {_short(after)}{hook}")
        elif path not in flat_new:
            lines.append(f"{path} removed (was {_short(before)}){hook}")
        elif path == "previous":
            previous = PREVIOUS.get(str(new.get("stage")), "previous")
            lines.append(f"the {previous} stage's key changed: {_short(before)} → {_short(after)}")
        else:
            lines.append(f"{path} changed: {_short(before)} → {_short(after)}{hook}")
    return lines


def explain(
    plan: Plan,
    stage: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    cache_dir: Path | None = None,
) -> str:
    """`<stage>: hit` or `<stage>: miss — <why>` (a line per reason); read-only."""
    cache = cache_dir or Path(plan.build.cachedir)
    if stage not in INPUTS:
        return f"{stage}: not cached (always runs)"
    if stage in PREVIOUS and not commit_known(plan, inputs):
        return (f"{stage}: unknown until the ostree stage pulls {plan.ostree.ref} "
                "(the commit is not pinned; see `eib lock`)")
    key, data = stage_key(plan, stage, inputs)
    if (entry_dir(cache, stage, key) / INPUTS_FILE).is_file():
        return f"{stage}: hit ({key[:12]})"
    if stage == "ostree" and not commit_known(plan, inputs):
        return f"{stage}: miss — the ref {plan.ostree.ref} is not pinned (see `eib lock`)"
    previous = sorted(entries(cache, stage), key=lambda e: (e.last_used, e.created))
    if not previous:
        return f"{stage}: miss — no cached result of this stage ({key[:12]})"
    reasons = diff_inputs(previous[-1].inputs(), data) or ["inputs differ"]
    if len(reasons) == 1:
        return f"{stage}: miss — {reasons[0]}"
    return f"{stage}: miss — {len(reasons)} inputs changed:\n" + "\n".join(
        f"  {line}" for line in reasons
    )


def explain_all(
    plan: Plan,
    inputs: Mapping[str, Any] | None = None,
    *,
    cache_dir: Path | None = None,
    stages: Sequence[str] | None = None,
) -> str:
    """`explain` for every stage, one block per stage (what `--explain-cache` prints);
    the Flatpak part comes after the image stage when the plan installs apps."""
    if stages is None:
        installs = plan.flatpak.enable and any(
            r.enable and (r.apps or r.runtimes) for r in plan.flatpak.remotes.values()
        )
        stages = ("ostree", "image", *(("flatpak",) if installs else ()), "manifest", "publish")
    return "".join(explain(plan, s, inputs, cache_dir=cache_dir) + "\n" for s in stages)


__all__ = [
    "CACHED_PARTS",
    "CACHED_STAGES",
    "CacheEntry",
    "cached_stage",
    "commit_known",
    "diff_inputs",
    "disk_usage",
    "entries",
    "entry_dir",
    "explain",
    "explain_all",
    "gc",
    "lookup",
    "parse_size",
    "restore",
    "restore_into",
    "stage_key",
    "stage_keys",
    "store",
    "tool_version",
]
