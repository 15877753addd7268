"""Stage cache keys: the sha256 of exactly what a stage receives.

A stage's key covers the plan fields its `StageSpec` says it receives, the
names and sha256s of its hooks, the versions of the tools it runs, eib's own
executor code, what it only learns while building (the pulled commit) and
the previous stage's key, so a change anywhere re-runs that stage and every
stage after it.  Nothing here is listed by hand per stage.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eib.execute.stages import CACHED_STAGES, hook_inputs, received, spec
from eib.model.plan import Plan
from eib.tools.run import run

CACHE_FORMAT = 2
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
SOURCE_DIR = Path(__file__).resolve().parent.parent.parent


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
    """sha256 over eib's executor, Flatpak and tool code: new code means new results."""
    h = hashlib.sha256()
    for sub in ("execute", "flatpak", "tools"):
        for path in sorted((SOURCE_DIR / sub).rglob("*.py")):
            h.update(str(path.relative_to(SOURCE_DIR)).encode() + b"\0" + path.read_bytes()
                     + b"\0")
    return h.hexdigest()


def stage_inputs(plan: Plan, stage: str, runtime: Mapping[str, Any]) -> dict[str, Any]:
    """Everything `stage` receives, as canonical data (the key is its sha256)."""
    stage_spec = spec(stage)
    data: dict[str, Any] = {"format": CACHE_FORMAT, "stage": stage}
    data["plan"] = received(plan, stage_spec.receives)
    data["hooks"] = hook_inputs(plan, stage_spec.hook_groups)
    data["tools"] = {tool: tool_version(tool) for tool in stage_spec.tools(plan)}
    data["executor_sha256"] = executor_digest()
    for name in stage_spec.runtime:
        data[name] = str(runtime.get(name) or getattr(plan.ostree, name, "") or "")
    return data


def stage_key(
    plan: Plan, stage: str, inputs: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """(key, canonical inputs) of `stage` for `plan`.

    `inputs` carries what is only known at run time: `commit` (the OS commit
    the ostree stage pulled, when the plan pins none) and `previous` (the
    previous stage's key; computed from the same inputs when absent).
    """
    stage_spec = spec(stage)
    if not stage_spec.cached:
        raise ValueError(f"stage {stage!r} is not cached")
    runtime = dict(inputs or {})
    data = stage_inputs(plan, stage, runtime)
    if stage_spec.previous is not None:
        data["previous"] = runtime.get("previous") or stage_key(
            plan, stage_spec.previous, {k: v for k, v in runtime.items() if k != "previous"}
        )[0]
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
