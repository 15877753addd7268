"""The README's first command, end to end: `eib run recipes/demo.yaml` builds the
demo OS with its apps into a disk image that boots, and a locked demo builds
byte for byte the same twice."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eib.paths import RECIPES_DIR
from tests.loopback import demo_server, free_port

DEMO = RECIPES_DIR / "demo.yaml"
EIB = [sys.executable, "-m", "eib.cli"]
# The demo OS is built once per machine (kernel .deb included) and reused.
CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache")) / "run-cache"


def eib(*args: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class DemoBuild:
    work: Path
    out: Path
    port: int
    stdout: str

    def one(self, pattern: str) -> Path:
        found = sorted(self.out.glob(pattern))
        assert len(found) == 1, (pattern, [p.name for p in self.out.iterdir()])
        return found[0]


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoBuild]:
    work = tmp_path_factory.mktemp("demo") / "work"
    port = free_port()
    proc = eib("run", DEMO, "--set", f"demo.port={port}", "--cache-dir", CACHE,
               "--work-dir", work, "--no-cache")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield DemoBuild(work, work / "out", port, proc.stdout + proc.stderr)
    remove(work)


def test_demo_build_deploys_the_os_with_hooks_apps_and_manifest(demo_build: DemoBuild) -> None:
    assert "built eib-demo-master-amd64-amd64." in demo_build.stdout
    deploy = next((demo_build.work / "sysroot/ostree/deploy/eib-demo/deploy").glob("*.0"))
    commit = deploy.name.removesuffix(".0")
    served = subprocess.run(
        ["ostree", f"--repo={CACHE / 'demo' / 'serve' / 'ostree'}", "rev-parse",
         "os/eib-demo/amd64/master"], capture_output=True, text=True, check=True).stdout.strip()
    assert commit == served
    # Built-in image hooks: hostname, timezone, language.
    assert (deploy / "etc/hostname").read_text().strip() == "eib-demo"
    assert os.readlink(deploy / "etc/localtime").endswith("zoneinfo/Etc/UTC")
    assert "LANG=en_US.utf8" in (deploy / "etc/locale.conf").read_text()

    manifest = json.loads(demo_build.one("*.manifest.json").read_text())
    assert manifest["ostree"]["commit"] == commit
    assert manifest["ostree"]["ref"] == "os/eib-demo/amd64/master"
    assert (manifest["product"], manifest["branch"], manifest["arch"], manifest["platform"],
            manifest["personality"]) == ("eib-demo", "master", "amd64", "amd64", "base")
    assert manifest["outversion"] == demo_build.one("*.img.zst").name.removesuffix(".img.zst")
    assert manifest["builder"]["name"] == "eib"
    installed = manifest["flatpak"]["installed"]
    assert "app/org.eib.Hello/x86_64/stable" in installed
    assert "app/org.eib.Clock/x86_64/stable" in installed
    assert "runtime/org.eib.Platform/x86_64/1" in installed
    assert "full" in manifest["images"]

    # The OS's own Flatpak installation, read with flatpak itself.
    var = demo_build.work / "sysroot/ostree/deploy/eib-demo/var/lib/flatpak"
    env = {**os.environ, "FLATPAK_SYSTEM_DIR": str(var)}
    remotes = subprocess.run(["flatpak", "remotes", "--system", "--columns=name,url"],
                             capture_output=True, text=True, env=env, check=True).stdout
    assert "eib-demo\thttps://updates.example.org/flatpak/demo" in remotes


def test_demo_image_layout_and_checksums(demo_build: DemoBuild) -> None:
    image = demo_build.one("*.img.zst")
    proc = eib("inspect", "--json", image)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["partition_table"]["label"] == "gpt"
    roles = [p["role"] for p in info["partitions"]]
    assert roles == ["esp", "bios", "root (x86-64)"]
    root = info["partitions"][2]
    assert root["filesystem"]["label"] == "ostree"
    assert [d["os"] for d in info["deployments"]] == ["eib-demo"]
    assert info["bios_bootloader"] == "grub"
    check = subprocess.run(["sha256sum", "-c", demo_build.one("*.img.zst.sha256").name],
                           cwd=demo_build.out, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.boot
@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu is not installed")
@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_demo_image_boots(demo_build: DemoBuild, firmware: str, tmp_path: Path) -> None:
    log = tmp_path / f"{firmware}.log"
    proc = eib("boot", demo_build.one("*.img.zst"), "--firmware", firmware, "--timeout", "240",
               "--log", log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    console = log.read_text(errors="replace")
    assert "EIB-DEMO-READY" in console
    assert "HOSTNAME=eib-demo" in console


@pytest.mark.slow
def test_locked_demo_builds_on_two_machines_byte_for_byte(tmp_path: Path) -> None:
    """Two machines building from the same upstream repos (one demo served on
    loopback): each has its own cache, work and output dirs and its own clock;
    the lock is shared.  Raw image, compressed image and manifest are the same."""
    outs = []
    with contextlib.ExitStack() as cleanup:
        port = cleanup.enter_context(demo_server(CACHE / "demo"))
        cleanup.callback(remove, tmp_path / "second")
        cleanup.callback(remove, tmp_path / "first")
        upstream = ("--set", f"demo.port={port}", "--set", "demo.serve=false")
        lock = tmp_path / "demo.lock"
        proc = eib("lock", DEMO, *upstream, "-o", lock)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for name in ("first", "second"):
            top = tmp_path / name
            proc = eib("run", DEMO, *upstream, "--lock", lock, "--cache-dir", top / "cache",
                       "--work-dir", top / "work", "--no-cache")
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            outs.append(top / "work" / "out")
            outs.append(next((top / "work").glob("*.img")))
            time.sleep(1.1)  # clocks apart
        first_out, first_raw, second_out, second_raw = outs
        assert first_raw.read_bytes() == second_raw.read_bytes(), "raw images differ"
        # The build log differs (times, dirs), and SHA256SUMS lists its hash.
        own = ("build.txt", "SHA256SUMS")
        names = sorted(p.name for p in first_out.iterdir() if p.name not in own)
        assert names == sorted(p.name for p in second_out.iterdir() if p.name not in own)
        assert any(n.endswith(".img.zst") for n in names)
        assert any(n.endswith(".manifest.json") for n in names)
        differ = [n for n in names
                  if (first_out / n).read_bytes() != (second_out / n).read_bytes()]
        assert differ == []
        sums = [[line for line in (out / "SHA256SUMS").read_text().splitlines()
                 if not line.endswith("  build.txt")] for out in (first_out, second_out)]
        assert sums[0] == sums[1] and any(line.endswith(".img.zst") for line in sums[0])

