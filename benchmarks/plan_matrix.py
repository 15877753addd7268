#!/usr/bin/env python3
"""How fast plans compile: every variant of recipes/eos in one process.

Compares the amortized per-variant time of `eib plan --matrix` (one process
compiling the whole cross product) with the baseline of one `eib plan`
process per variant, the way the legacy builder's `--show-config` had to be
run, both in-process (`EIB_SERVER=off`, what a cold start costs) and through
the warm eib server (what CI's repeated calls cost).  Prints a table and
writes JSON (default benchmarks/results/plan_matrix.json).

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
import tempfile
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


def start_up(eib: list[str], env: dict[str, str], count: int) -> tuple[float, float, float]:
    """Medians of one `eib plan` process per variant, `eib plan recipes/demo.yaml`
    and `eib --help`, each run `count` times."""
    sample = variants()[:count]
    one_process(sample[0], eib, env)  # page cache; starts the server when it is on
    plan = statistics.median(one_process(v, eib, env) for v in sample)
    demo = statistics.median(
        _timed([*eib, "plan", str(ROOT / "recipes" / "demo.yaml")], env) for _ in range(count)
    )
    help_ = statistics.median(_timed([*eib, "--help"], env) for _ in range(count))
    return plan, demo, help_


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
    n = opts.processes
    cold_env = {**os.environ, "EIB_SERVER": "off"}
    cold_plan, cold_demo, cold_help = start_up(eib, cold_env, n)
    with tempfile.TemporaryDirectory() as runtime:
        os.chmod(runtime, 0o700)
        warm_env = {**os.environ, "EIB_SERVER": "auto", "XDG_RUNTIME_DIR": runtime}
        subprocess.run(
            [*eib, "server", "start"], check=True, env=warm_env, stdout=subprocess.DEVNULL
        )
        try:
            warm_plan, warm_demo, warm_help = start_up(eib, warm_env, n)
        finally:
            subprocess.run([*eib, "server", "stop"], env=warm_env, stdout=subprocess.DEVNULL)
    # The floors: what importing the CLI and model libraries alone costs on this
    # machine, the part of a cold start eib cannot shave off, and an empty
    # interpreter, the part the server cannot.
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
        ("one `eib plan` process per variant, warm server", ms(warm_plan)),
        ("one `eib plan` process per variant, no server", ms(cold_plan)),
        ("`eib plan recipes/demo.yaml`, warm server", ms(warm_demo)),
        ("`eib plan recipes/demo.yaml`, no server", ms(cold_demo)),
        ("`eib --help`, warm server", ms(warm_help)),
        ("`eib --help`, no server", ms(cold_help)),
        ("  floor: python -c pass", ms(python_floor)),
        ("  floor: python -c 'import typer'", ms(help_floor)),
        ("  floor: import typer, pydantic, yaml + 1 model", ms(plan_floor)),
        ("ratio no server / warm server (one variant)", f"{cold_plan / warm_plan:.1f}x"),
        ("ratio no-server process / its library floor", f"{cold_plan / plan_floor:.2f}x"),
        (
            "ratio warm-server process / amortized in-process",
            f"{warm_plan / (total / len(times)):.1f}x",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    result = {
        "variants": len(times),
        "variants_per_second": len(times) / total,
        "median_ms": median * 1000,
        "import_ms": import_time * 1000,
        "process_median_ms": {"server": warm_plan * 1000, "no_server": cold_plan * 1000},
        "demo_plan_ms": {"server": warm_demo * 1000, "no_server": cold_demo * 1000},
        "help_ms": {"server": warm_help * 1000, "no_server": cold_help * 1000},
        "python_floor_ms": python_floor * 1000,
        "help_floor_ms": help_floor * 1000,
        "plan_floor_ms": plan_floor * 1000,
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
