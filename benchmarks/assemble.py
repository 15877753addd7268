#!/usr/bin/env python3
"""Benchmark: eib's disk assembly + compression against the floor and the legacy method.

On one generated sysroot (default ≥ 500 MB: many small files, a few large
ones, text mixed with incompressible data, hard links), time:

* floor: one `tar` read of the tree piped through the compressor to /dev/null;
* eib: `assemble_image` (sfdisk, mke2fs -d, ESP, checksums, compression);
* legacy: sfdisk + loop device + mke2fs + mount + `rsync -aHAX` + umount +
  `e2fsck -f -p` + `pigz` (the legacy builder's steps; it only knew gz).

Prints a table with the ratios and writes JSON. Needs root (loop mount).
Usage: benchmarks/assemble.py [--size-mb 560] [--dir /var/tmp/eib-bench] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

SRC = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SRC))

from eib.compile.compiler import CompileRequest, compile_plan  # noqa: E402
from eib.execute.disk import assemble_image, find_deployments  # noqa: E402
from eib.execute.disk_layout import extra_space  # noqa: E402
from eib.model.plan import Plan  # noqa: E402

COMMIT = "c0ffee" * 10 + "c0ff"
WORDS = [
    "ostree",
    "flatpak",
    "image",
    "builder",
    "kernel",
    "initramfs",
    "partition",
    "boot",
    "loader",
    "grub",
    "efi",
    "system",
    "root",
    "deploy",
    "commit",
    "checksum",
    "signature",
    "compress",
    "archive",
    "manifest",
    "hook",
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "or",
    "have",
]


def generate_tree(root: Path, size_mb: int, seed: int = 42) -> dict[str, int]:
    """A deployment-like tree: ~60 % small files (half text, half random), the
    rest in four large files, plus hard links as ostree makes them."""
    rng = random.Random(seed)
    corpus = " ".join(rng.choices(WORDS, k=3_000_000)).encode()  # ~20 MB of text
    deploy = root / "ostree" / "deploy" / "bench" / "deploy" / f"{COMMIT}.0"
    objects = root / "ostree" / "repo" / "objects"
    target = size_mb * 1_000_000
    small_budget = target * 6 // 10
    written = files = links = 0
    n = 0
    while written < small_budget:
        size = rng.choice((512, 1024, 2048, 4096, 8192, 16384, 32768))
        directory = deploy / "usr" / "share" / f"d{n // 200:04d}"
        if n % 200 == 0:
            directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"f{n:06d}"
        if n % 2:
            data = os.urandom(size)
        else:
            start = rng.randrange(0, len(corpus) - size)
            data = corpus[start : start + size]
        path.write_bytes(data)
        if n % 10 == 0:
            sub = objects / f"{n % 256:02x}"
            sub.mkdir(parents=True, exist_ok=True)
            os.link(path, sub / f"{n:06d}.file")
            links += 1
        written += size
        files += 1
        n += 1
    large_dir = deploy / "usr" / "lib" / "large"
    large_dir.mkdir(parents=True)
    each = (target - written) // 4
    for i in range(4):
        with (large_dir / f"blob{i}").open("wb") as out:
            left = each
            while left > 0:
                step = min(left, 4 << 20)
                if i % 2:
                    out.write(os.urandom(step))
                else:
                    start = rng.randrange(0, len(corpus) - step)
                    out.write(corpus[start : start + step])
                left -= step
        written += each
        files += 1
    (deploy / "etc").mkdir()
    (deploy / "etc" / "os-release").write_text('NAME="Bench OS"\nVERSION="1"\n')
    (root / "boot" / "loader" / "entries").mkdir(parents=True)
    return {"bytes": written, "files": files, "hard_links": links}


CPU: list[float] = []


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Any) -> float:
    """Wall seconds of fn(); its CPU seconds (all threads and children) go to CPU."""
    start, cpu = time.monotonic(), _cpu()
    fn()
    CPU.append(_cpu() - cpu)
    return time.monotonic() - start


def floor(tree: Path, compressor: list[str]) -> float:
    def go() -> None:
        tar = subprocess.Popen(["tar", "-C", str(tree), "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(compressor, stdin=tar.stdout, stdout=subprocess.DEVNULL, check=True)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar failed")

    return timed(go)


def make_plan(work: Path, compression: str) -> Plan:
    recipe = work / f"bench-{compression}.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "eib": 1,
                "variant": {"product": "bench", "arch": "amd64"},
                "ostree": {"os": "bench"},
                "image": {"compression": compression},
            }
        )
    )
    return compile_plan(CompileRequest(recipe, source_date_epoch=1767225600)).plan  # 260101-000000


def eib_run(tree: Path, work: Path, compression: str) -> tuple[float, int]:
    plan = make_plan(work, compression)
    out = work / f"eib-{compression}"
    shutil.rmtree(out, ignore_errors=True)
    seconds = timed(lambda: assemble_image(plan, tree, out / "out", out / "work", out / "manifest"))
    size = (out / "out" / plan.outputs.compressed).stat().st_size
    shutil.rmtree(out)
    return seconds, size


def legacy_run(tree: Path, work: Path, tree_bytes: int) -> tuple[float, int]:
    """The legacy builder's image steps, minus the ESP (vfat cannot be mounted here)."""
    img = work / "legacy.img"
    mnt = work / "legacy-mnt"
    mnt.mkdir(exist_ok=True)
    size = tree_bytes + extra_space(tree_bytes, None)
    size -= size % 512
    state: dict[str, str] = {}

    def go() -> None:
        img.unlink(missing_ok=True)
        subprocess.run(["truncate", "-s", str(size), str(img)], check=True)
        script = (
            "start=2048, size=62MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
            "size=1MiB, type=21686148-6449-6E6F-744E-656564454649\n"
            "type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, attrs=GUID:55\n"
        )
        subprocess.run(
            ["sfdisk", "--force", "--label", "gpt", "-q", str(img)],
            input=script,
            text=True,
            check=True,
        )
        table = json.loads(
            subprocess.run(
                ["sfdisk", "--json", str(img)], capture_output=True, text=True, check=True
            ).stdout
        )["partitiontable"]
        root = table["partitions"][2]
        loop = subprocess.run(
            [
                "losetup",
                "-f",
                "--show",
                "--offset",
                str(root["start"] * 512),
                "--sizelimit",
                str(root["size"] * 512),
                str(img),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        state["loop"] = loop
        subprocess.run(
            [
                "mke2fs",
                "-q",
                "-t",
                "ext4",
                "-O",
                "dir_index,^huge_file",
                "-m1",
                "-L",
                "ostree",
                "-T",
                "default",
                loop,
            ],
            check=True,
        )
        subprocess.run(["mount", loop, str(mnt)], check=True)
        state["mounted"] = "1"
        subprocess.run(["rsync", "-aHAX", f"{tree}/", f"{mnt}/"], check=True)
        subprocess.run(["umount", str(mnt)], check=True)
        del state["mounted"]
        subprocess.run(["e2fsck", "-f", "-p", loop], check=True)
        subprocess.run(["losetup", "-d", loop], check=True)
        del state["loop"]
        with (work / "legacy.img.gz").open("wb") as out:
            subprocess.run(["pigz", "--no-name", "-c", str(img)], stdout=out, check=True)

    try:
        seconds = timed(go)
    finally:
        if "mounted" in state:
            subprocess.run(["umount", str(mnt)], check=False)
        if "loop" in state:
            subprocess.run(["losetup", "-d", state["loop"]], check=False)
    compressed = (work / "legacy.img.gz").stat().st_size
    img.unlink()
    (work / "legacy.img.gz").unlink()
    return seconds, compressed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=560)
    parser.add_argument("--dir", type=Path, default=None, help="Work dir (default: a temp dir)")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "assemble.json",
    )
    parser.add_argument("--skip-legacy", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0 and not args.skip_legacy:
        parser.error("the legacy method needs root (loop mount); use --skip-legacy")
    work = Path(tempfile.mkdtemp(prefix="eib-bench-", dir=args.dir))
    try:
        tree = work / "sysroot"
        print(f"generating a {args.size_mb} MB tree in {tree} …", flush=True)
        facts = generate_tree(tree, args.size_mb)
        du = int(
            subprocess.run(
                ["du", "-s", "--block-size=1", str(tree)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[0]
        )
        facts["du_bytes"] = du
        subprocess.run(["sync"], check=True)
        floor_cmds = {"zstd": ["zstd", "-T0", "-q", "-c"], "gz": ["pigz", "--no-name", "-c"]}
        results: dict[str, Any] = {"tree": facts, "cpus": os.cpu_count(), "runs": {}}
        for kind in ("zstd", "gz"):
            floor(tree, floor_cmds[kind])  # warm the page cache the same way for everyone
            seconds = floor(tree, floor_cmds[kind])
            results["runs"][f"floor-{kind}"] = {"seconds": seconds, "cpu_seconds": CPU[-1]}
            seconds, size = eib_run(tree, work, kind)
            results["runs"][f"eib-{kind}"] = {
                "seconds": seconds,
                "cpu_seconds": CPU[-1],
                "compressed_bytes": size,
            }
        if not args.skip_legacy:
            seconds, size = legacy_run(tree, work, du)
            results["runs"]["legacy-gz"] = {
                "seconds": seconds,
                "cpu_seconds": CPU[-1],
                "compressed_bytes": size,
            }
        runs = results["runs"]
        ratios = {
            "eib_zstd_vs_floor": runs["eib-zstd"]["seconds"] / runs["floor-zstd"]["seconds"],
            "eib_gz_vs_floor": runs["eib-gz"]["seconds"] / runs["floor-gz"]["seconds"],
        }
        if "legacy-gz" in runs:
            ratios["legacy_gz_vs_eib_gz"] = runs["legacy-gz"]["seconds"] / runs["eib-gz"]["seconds"]
            ratios["legacy_gz_vs_eib_zstd"] = (
                runs["legacy-gz"]["seconds"] / runs["eib-zstd"]["seconds"]
            )
        results["ratios"] = ratios
        print(
            f"\ntree: {facts['bytes'] / 1e6:.0f} MB in {facts['files']} files "
            f"({facts['hard_links']} hard links), du {du / 1e6:.0f} MB, {os.cpu_count()} CPUs"
        )
        load = os.getloadavg()[0]
        results["load_average_1min_at_end"] = load
        print(f"{'method':<12} {'wall s':>8} {'CPU s':>8} {'output MB':>10}")
        for name, run in runs.items():
            out_mb = f"{run['compressed_bytes'] / 1e6:.0f}" if "compressed_bytes" in run else "-"
            print(f"{name:<12} {run['seconds']:>8.1f} {run['cpu_seconds']:>8.1f} {out_mb:>10}")
        for name, value in ratios.items():
            print(f"{name:<24} {value:5.2f}× (wall)")
        print(f"load average at the end: {load:.1f} (other work on the machine skews wall times)")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    finally:
        for deployment in find_deployments(work / "sysroot"):
            subprocess.run(["chattr", "-i", str(deployment)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
