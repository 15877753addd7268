#!/usr/bin/env python3
"""How fast plans compile: every variant of recipes/eos in one process.

Compares the amortized per-variant time of `eib plan --matrix` (one process
compiling the whole cross product) with the baseline of one `eib plan`
process per variant, the way the legacy builder's `--show-config` had to be
run.  Prints a table and writes JSON (default benchmarks/results/plan_matrix.json).

    python benchmarks/plan_matrix.py [--processes N] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
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
    from eib.compile import compile_recipe

    import_time = time.perf_counter() - start
    times = []
    for variant in variants():
        t0 = time.perf_counter()
        compile_recipe(RECIPE, variant)
        times.append(time.perf_counter() - t0)
    return times, import_time


def one_process(variant: dict[str, str], command: list[str]) -> float:
    args = [f"--{k}={v}" for k, v in variant.items()]
    t0 = time.perf_counter()
    subprocess.run(
        [*command, "plan", str(RECIPE), *args, "--json"], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


LIBRARY_FLOOR = (
    "import typer, pydantic, yaml\n"
    "class A(pydantic.BaseModel):\n"
    "    x: int = 1\n"
    "A()"
)


def _timed(command: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--processes", type=int, default=8, help="variants timed as one process each (baseline)"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "plan_matrix.json"
    )
    opts = parser.parse_args()
    eib = [str(Path(sys.executable).parent / "eib")]

    times, import_time = in_process()
    total = sum(times)
    median = statistics.median(times)
    sample = variants()[: opts.processes]
    one_process(sample[0], eib)  # warm the page cache
    per_process = [one_process(v, eib) for v in sample]
    proc_median = statistics.median(per_process)
    help_time = statistics.median(
        _timed([*eib, "--help"]) for _ in range(opts.processes)
    )
    # The floors: what importing the CLI and model libraries alone costs on this
    # machine, the part of start-up eib cannot shave off.
    help_floor = statistics.median(
        _timed([sys.executable, "-c", "import typer"]) for _ in range(opts.processes)
    )
    plan_floor = statistics.median(
        _timed([sys.executable, "-c", LIBRARY_FLOOR]) for _ in range(opts.processes)
    )

    rows = [
        ("variants compiled in one process", f"{len(times)}"),
        ("in-process: variants per second", f"{len(times) / total:.0f}"),
        ("in-process: median per variant", f"{median * 1000:.1f} ms"),
        ("in-process: first variant (cold caches)", f"{times[0] * 1000:.1f} ms"),
        ("baseline: one `eib plan` process per variant", f"{proc_median * 1000:.0f} ms"),
        ("`eib --help` wall time (median)", f"{help_time * 1000:.0f} ms"),
        ("  floor: python -c 'import typer'", f"{help_floor * 1000:.0f} ms"),
        ("  floor: import typer, pydantic, yaml + 1 model", f"{plan_floor * 1000:.0f} ms"),
        ("ratio one `eib plan` process / its library floor", f"{proc_median / plan_floor:.2f}x"),
        ("ratio baseline / amortized in-process", f"{proc_median / (total / len(times)):.1f}x"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    result = {
        "variants": len(times),
        "variants_per_second": len(times) / total,
        "median_ms": median * 1000,
        "import_ms": import_time * 1000,
        "process_median_ms": proc_median * 1000,
        "help_ms": help_time * 1000,
        "help_floor_ms": help_floor * 1000,
        "plan_floor_ms": plan_floor * 1000,
        "ratio_process_vs_amortized": proc_median / (total / len(times)),
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
