#!/usr/bin/env python3
"""How cheap rebuilds are: the demo built three times from one lock.

1. full build (empty stage cache; the demo OS itself is built once into the
   cache dir beforehand and not timed),
2. no-op rebuild (same lock, same recipe: every cached stage should hit),
3. rebuild after changing one image hook (only the image stage and what
   follows should re-run).

The recipe is `recipes/demo.yaml` copied to a scratch dir together with its
`50-hostname` image hook, so step 3 edits the copy, never the checkout.  Each
build runs `eib run --plan` on the plan `eib plan --lock` compiled, with
`SOURCE_DATE_EPOCH` set to the locked commit's time, so all three share one
build version.  Before each build `eib cache explain` shows what the cache
expects.  Prints a table with the times and the ratios to the full build,
and writes JSON (default benchmarks/results/rebuild.json).

    python benchmarks/rebuild.py [--cache-dir DIR] [--json OUT] [--keep]

Targets (issue 8): no-op rebuild < 2 s plus the output copy; one-hook
rebuild <= 40 % of the full build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "demo.yaml"
HOOK = ROOT / "hooks" / "image" / "50-hostname"
EIB = [sys.executable, "-m", "eib.cli"]


def eib(*args: str | Path, env: dict[str, str], capture: bool = True) -> str:
    proc = subprocess.run([*EIB, *(str(a) for a in args)], env=env, text=True,
                          capture_output=capture, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr or "")
        raise SystemExit(f"eib {args[0]} failed with {proc.returncode}")
    return proc.stdout or ""


def remove(path: Path) -> None:
    """Delete a work dir: ostree deployments are immutable."""
    if path.exists():
        subprocess.run(["chattr", "-R", "-f", "-i", str(path)], check=False,
                       capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def build(
    name: str, recipe: Path, lock: Path, scratch: Path, env: dict[str, str]
) -> dict[str, Any]:
    explained = eib("cache", "explain", recipe, "--lock", lock, env=env)
    plan = scratch / f"{name}.plan.json"
    plan.write_text(eib("plan", recipe, "--lock", lock, "--json", env=env))
    out = scratch / "out"
    start = time.perf_counter()
    eib("run", "--plan", plan, "--dry-run", "--work-dir", scratch / "work", "--output-dir", out,
        env=env, capture=False)
    seconds = time.perf_counter() - start
    sys.stderr.write(f"--- {name}: {seconds:.2f} s\n{explained}")
    outputs = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    return {"seconds": round(seconds, 3), "explain": explained.splitlines(), "outputs": outputs}


def trust_demo_key(recipe: Path, cache: Path) -> None:
    """Point the copied recipe's keys at the demo's public key wherever the demo keeps it."""
    import yaml

    from eib.demo import ensure_demo

    key = str(ensure_demo(cache).gpg_key)
    data = yaml.safe_load(recipe.read_text())
    data["ostree"]["gpg_keys"] = [key]
    for remote in data.get("flatpak", {}).get("remotes", {}).values():
        remote["gpg_key"] = key
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/var/tmp/eib-bench-cache"),
                        help="Cache dir (the demo OS is built into it once and reused)")
    parser.add_argument("--json", type=Path,
                        default=ROOT / "benchmarks" / "results" / "rebuild.json")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch dir")
    args = parser.parse_args()

    cache = args.cache_dir.absolute()
    scratch = Path(tempfile.mkdtemp(prefix="eib-rebuild-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    env["EIB_CACHE_DIR"] = str(cache)
    try:
        recipe_dir = scratch / "recipe"
        (recipe_dir / "hooks" / "image").mkdir(parents=True)
        recipe = recipe_dir / "demo.yaml"
        shutil.copy(RECIPE, recipe)
        hook = recipe_dir / "hooks" / "image" / HOOK.name
        shutil.copy(HOOK, hook)

        # Make (or reuse) the demo OS before timing anything, then lock it.
        eib("demo-os", env=env, capture=False)
        trust_demo_key(recipe, cache)
        lock = recipe_dir / "demo.lock"
        eib("lock", recipe, "-o", lock, env=env)
        shutil.rmtree(cache / "stages", ignore_errors=True)

        results = {"full": build("full", recipe, lock, scratch, env)}
        results["noop"] = build("noop", recipe, lock, scratch, env)
        hook.write_text(hook.read_text() + "\n# changed for the rebuild benchmark\n")
        results["one_hook"] = build("one_hook", recipe, lock, scratch, env)
    finally:
        remove(scratch / "work")
        if not args.keep:
            remove(scratch)

    full = float(results["full"]["seconds"])
    ratios = {name: round(float(r["seconds"]) / full, 3) for name, r in results.items()}
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "system": platform.platform()},
        "builds": results,
        "ratios": ratios,
        "targets": {"noop_seconds": 2.0, "one_hook_ratio": 0.40},
    }
    print(f"{'build':<10} {'seconds':>9} {'ratio':>7}")
    for name, r in results.items():
        print(f"{name:<10} {float(r['seconds']):>9.2f} {ratios[name]:>7.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
