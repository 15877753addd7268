#!/usr/bin/env python3
"""How fast plans compile: every variant of recipes/eos in one process.

Compares the amortized per-variant time of `eib plan --matrix` (one process
compiling the whole cross product) with the baseline of one `eib plan`
process per variant, the way the legacy builder's `--show-config` had to be
run, and puts the cold start of `eib plan recipes/demo.yaml` and `eib --help`
beside the library floor (a bare `import typer, pydantic, yaml` and one
model): the part of a start eib cannot shave off.  The target is at most
1.3x that floor.  Prints a table and writes JSON (default
benchmarks/results/plan_matrix.json).

    python benchmarks/plan_matrix.py [--processes N] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "eos" / "eos.yaml"
AXES = {
    "product": ["eos", "eosx"],
    "branch": ["master", "eos6.0", "eos5.1"],
    "arch": ["amd64", "arm64"],
    "personality": ["base", "en", "es", "pt_BR"],
}


def variants() -> list[dict[str, str]]:
    names = list(AXES)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*AXES.values())]


def in_process() -> tuple[list[float], float]:
    start = time.perf_counter()
    from eib.compile.compiler import compile_recipe

    import_time = time.perf_counter() - start
    times = []
    for variant in variants():
        t0 = time.perf_counter()
        compile_recipe(RECIPE, variant)
        times.append(time.perf_counter() - t0)
    return times, import_time


def one_process(variant: dict[str, str], command: list[str], env: dict[str, str]) -> float:
    args = [f"--{k}={v}" for k, v in variant.items()]
    t0 = time.perf_counter()
    subprocess.run(
        [*command, "plan", str(RECIPE), *args, "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - t0


LIBRARY_FLOOR = "import typer, pydantic, yaml\nclass A(pydantic.BaseModel):\n    x: int = 1\nA()"


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def start_up(eib: list[str], count: int) -> tuple[float, float, float]:
    """Medians of one `eib plan` process per variant, `eib plan recipes/demo.yaml`
    and `eib --help`, each run `count` times."""
    sample = variants()[:count]
    one_process(sample[0], eib, dict(os.environ))  # warm the page cache
    plan = statistics.median(one_process(v, eib, dict(os.environ)) for v in sample)
    demo = statistics.median(
        _timed([*eib, "plan", str(ROOT / "recipes" / "demo.yaml")]) for _ in range(count)
    )
    help_ = statistics.median(_timed([*eib, "--help"]) for _ in range(count))
    return plan, demo, help_


def interleaved(commands: list[list[str]], count: int) -> list[list[float]]:
    """`count` times of each command, the commands taking turns (so a change of
    the machine's load hits both sides of a ratio alike)."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(count):
        for i, command in enumerate(commands):
            times[i].append(_timed(command))
    return times


# What the `eib` console script runs, with this interpreter and import path.
EIB = [sys.executable, "-c", "import sys; from eib.cli import main; sys.argv[0] = 'eib'; main()"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--processes", type=int, default=8, help="variants timed as one process each (baseline)"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "plan_matrix.json"
    )
    opts = parser.parse_args()

    times, import_time = in_process()
    total = sum(times)
    median = statistics.median(times)
    n = opts.processes
    plan, demo, help_ = start_up(EIB, n)
    # Interleaved with the floor: on a shared machine these ratios are the ones
    # to quote; the minimum is what start-up costs without other load.
    demo_times, floor_times = interleaved(
        [
            [*EIB, "plan", str(ROOT / "recipes" / "demo.yaml")],
            [sys.executable, "-c", LIBRARY_FLOOR],
        ],
        n,
    )
    best_demo, best_floor = min(demo_times), min(floor_times)
    paired_demo, paired_floor = statistics.median(demo_times), statistics.median(floor_times)
    # The floors: an empty interpreter, and importing the CLI and model
    # libraries alone, the part of a cold start eib cannot shave off.
    help_floor = statistics.median(_timed([sys.executable, "-c", "import typer"]) for _ in range(n))
    plan_floor = statistics.median(_timed([sys.executable, "-c", LIBRARY_FLOOR]) for _ in range(n))
    python_floor = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(n))

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    rows = [
        ("variants compiled in one process", f"{len(times)}"),
        ("in-process: variants per second", f"{len(times) / total:.0f}"),
        ("in-process: median per variant", f"{median * 1000:.1f} ms"),
        ("in-process: first variant (cold caches)", f"{times[0] * 1000:.1f} ms"),
        ("one `eib plan` process per variant", ms(plan)),
        ("`eib plan recipes/demo.yaml`", ms(demo)),
        ("`eib --help`", ms(help_)),
        ("  floor: python -c pass", ms(python_floor)),
        ("  floor: python -c 'import typer'", ms(help_floor)),
        ("  floor: import typer, pydantic, yaml + 1 model", ms(plan_floor)),
        ("ratio `eib plan recipes/demo.yaml` / library floor", f"{demo / plan_floor:.2f}x"),
        ("  interleaved, best of n: `eib plan recipes/demo.yaml`", ms(best_demo)),
        ("  interleaved, best of n: library floor", ms(best_floor)),
        ("ratio best `eib plan recipes/demo.yaml` / best floor", f"{best_demo / best_floor:.2f}x"),
        ("ratio interleaved medians, demo plan / floor", f"{paired_demo / paired_floor:.2f}x"),
        ("ratio `eib --help` / library floor", f"{help_ / plan_floor:.2f}x"),
        ("ratio one-variant process / library floor", f"{plan / plan_floor:.2f}x"),
        ("ratio one-variant process / amortized in-process", f"{plan / (total / len(times)):.1f}x"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    result = {
        "variants": len(times),
        "variants_per_second": len(times) / total,
        "median_ms": median * 1000,
        "import_ms": import_time * 1000,
        "process_median_ms": plan * 1000,
        "demo_plan_ms": demo * 1000,
        "help_ms": help_ * 1000,
        "python_floor_ms": python_floor * 1000,
        "help_floor_ms": help_floor * 1000,
        "plan_floor_ms": plan_floor * 1000,
        "demo_plan_ratio": demo / plan_floor,
        "demo_plan_best_ms": best_demo * 1000,
        "plan_floor_best_ms": best_floor * 1000,
        "demo_plan_best_ratio": best_demo / best_floor,
        "demo_plan_interleaved_median_ratio": paired_demo / paired_floor,
        "help_ratio": help_ / plan_floor,
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
