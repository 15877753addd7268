"""The manifest stage: one JSON document describing the build.

Every stage and hook drops JSON fragments into EIB_MANIFESTDIR; this stage
adds the basic facts, runs the `manifest` hooks, and deep-merges the
fragments in file-name order so a later fragment refines an earlier one.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from eib import __version__, paths
from eib.errors import BuildError
from eib.execute.context import BuildContext
from eib.execute.hooks import run_hooks
from eib.model.plan import Plan

log = logging.getLogger("eib.execute.manifest")

PRODUCT_NAMES = {"eos": "Endless OS", "eosinstaller": "Endless OS Installer"}


def source_commit() -> str:
    """The git commit of eib's checkout, or '' when not run from one."""
    if not (paths.SOURCE_DIR / ".git").exists():
        return ""
    proc = subprocess.run(
        ["git", "-C", str(paths.SOURCE_DIR), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def basic_info(plan: Plan) -> dict[str, Any]:
    b = plan.build
    commit = source_commit()
    product_name = plan.env.get("EIB_PRODUCT_NAME") or PRODUCT_NAMES.get(b.product, b.product)
    return {
        "product": b.product,
        "product_name": product_name,
        "branch": b.branch,
        "arch": b.arch,
        "platform": b.platform,
        "personality": b.personality,
        "build_version": b.build_version,
        "outversion": plan.outputs.outversion,
        "builder": {"name": "eib", "version": __version__, "commit": commit},
        "builder_commit": commit,  # the legacy builder's key
    }


def merge_fragments(files: list[Path]) -> dict[str, Any]:
    """Deep-merge JSON objects; a key that is an object in one file only is an error."""
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], Path] = {}

    def merge(dst: dict[str, Any], src: dict[str, Any], where: tuple[str, ...], file: Path) -> None:
        for key, value in src.items():
            path = (*where, key)
            if key in dst:
                old_is_dict, new_is_dict = isinstance(dst[key], dict), isinstance(value, dict)
                if old_is_dict and new_is_dict:
                    merge(dst[key], value, path, file)
                    continue
                if old_is_dict != new_is_dict:
                    raise BuildError(
                        f"manifest key '{'.'.join(path)}' is an object in "
                        f"{origin[path] if old_is_dict else file} but not in "
                        f"{file if old_is_dict else origin[path]}",
                        step="merge",
                    )
            dst[key] = value
            origin[path] = file
            if isinstance(value, dict):
                _record(value, path, file)

    def _record(value: dict[str, Any], where: tuple[str, ...], file: Path) -> None:
        for key, sub in value.items():
            origin[(*where, key)] = file
            if isinstance(sub, dict):
                _record(sub, (*where, key), file)

    for file in files:
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise BuildError(
                f"manifest fragment {file} is not valid JSON: {err}", step="merge"
            ) from None
        if not isinstance(data, dict):
            raise BuildError(f"manifest fragment {file} is not a JSON object", step="merge")
        merge(merged, data, (), file)
    return merged


def run_manifest_stage(ctx: BuildContext) -> Path:
    dirs = ctx.dirs
    dirs.manifest.mkdir(parents=True, exist_ok=True)
    ctx.step = "basic-info"
    ctx.monitor.step("basic info")
    info = json.dumps(basic_info(ctx.plan), indent=2, sort_keys=True) + "\n"
    (dirs.manifest / "basic-info.json").write_text(info)

    run_hooks(ctx, "manifest")

    ctx.step = "merge"
    ctx.monitor.step("merge fragments")
    files = sorted(dirs.manifest.glob("*.json"))
    from eib.secrets import redactor

    merged = redactor(ctx.plan, ctx.secrets).data(merge_fragments(files))
    out = dirs.output / ctx.plan.outputs.manifest
    out.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    log.info("manifest: %s from %d fragments", out, len(files))
    return out
