"""Why a stage is, or is not, reused: the changed inputs named (mkosi's cache manifest idea).

Every entry keeps its inputs as JSON beside the result: on a miss, `explain`
diffs the new inputs against the most recently used entry of that stage and
says *which* input changed, e.g.
`image: miss — hooks.image[2].sha256 changed: 1a2b3c4d… → 9f8e7d6c… (hooks/image/50-hostname)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eib import paths
from eib.execute.cache.keys import commit_known, stage_key
from eib.execute.cache.store import INPUTS_FILE, entries, entry_dir
from eib.execute.stages import STAGES, installs_flatpaks, spec
from eib.model.plan import Plan


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
            previous = spec(str(new.get("stage"))).previous or "previous"
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
    cache = cache_dir or paths.cache_dir()
    stage_spec = spec(stage)
    if not stage_spec.cached:
        return f"{stage}: not cached (always runs)"
    if "commit" in stage_spec.runtime and stage != "ostree" and not commit_known(plan, inputs):
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
        stages = tuple(
            s.name for s in STAGES
            if s.name != "error" and (s.name != "flatpak" or installs_flatpaks(plan))
        )
    return "".join(explain(plan, s, inputs, cache_dir=cache_dir) + "\n" for s in stages)
