# ruff: noqa: F811  (test arguments named after the fixtures imported below)
"""The fault-injection matrix: SIGTERM, SIGINT and SIGKILL at each step of a build,
a full work dir and a full cache dir.

Every case is a real demo build (`eib run` as a subprocess) next to a finished
previous build, stopped at one step (the image signing case with a signing
key of its own), and what a user then finds is checked:
the exit status and the one line saying where it stopped, no process of the
build left running (this test process adopts the build's orphans as a child
subreaper, so nothing escapes by being reparented), no mount left under the
work dir, no temporary dir of the build left in `$TMPDIR/eib-tmp-<uid>/`, the
previous build byte for byte and the failed build's log and `FAILED` file in
`<output>/failed/`.  The last test builds again and must succeed.

A hook step is reached with a hook that says it started and then blocks. A
tool step (deploy, Flatpak install, mke2fs, compression, signing) is too quick on the
small demo to be hit by watching the progress, so the tool is slowed down
instead: a wrapper of the same name, first in PATH, says it started, waits
(a shell builtin, no extra process) and would then run the real tool.  The
signal finds eib exactly where it would be during a long real run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .servers import wait_for
from .test_outputs import IMAGE_SUFFIXES, Site, _remove, digests, eib_env, site  # noqa: F401

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Step:
    """Where a case stops the build: `where` is what eib must name."""

    where: str
    hooks: tuple[tuple[str, str], ...] = ()  # (group/name, text) of blocking hooks
    tool: str = ""  # a tool to slow down
    args: str = ""  # ... when its arguments contain this
    ready: str = "ready"  # the file, relative to the top dir, saying the step started
    signed: bool = False  # the images are signed (image.signing_keyid)


BLOCK = ': > "$EIB_BUILDDIR/ready"\necho blocking\nsleep 600\n'
# Inside the deployment the work dir is not mounted, the sysroot is.
BLOCK_INSIDE = "touch /sysroot/ready\necho blocking inside\nsleep 600\n"

STEPS = {
    "content-hook": Step("image/hook 10-block", hooks=(("content/10-block", BLOCK),),
                         ready="work/ready"),
    "image-hook": Step("image/hook 60-block", hooks=(("image/60-block", BLOCK),),
                       ready="work/ready"),
    "chroot-hook": Step("image/hook 60-block.chroot",
                        hooks=(("image/60-block.chroot", BLOCK_INSIDE),),
                        ready="work/sysroot/ready"),
    "deploy": Step("image/deploy", tool="ostree", args=" admin deploy "),
    "flatpak-install": Step("image/flatpak", tool="flatpak", args=" install "),
    "mke2fs": Step("image/disk", tool="mke2fs"),
    "compress": Step("image/disk", tool="zstd", args=" -c "),
    "sign": Step("image/disk", tool="gpg", args=" --detach-sign ", signed=True),
    "manifest-hook": Step("manifest/hook 10-block", hooks=(("manifest/10-block", BLOCK),),
                          ready="work/ready"),
    "publish-hook": Step("publish/hook 10-block", hooks=(("publish/10-block", BLOCK),),
                         ready="work/ready"),
}

SIGNALS = {signal.SIGTERM: 143, signal.SIGINT: 130}

WRAPPER = """#!/bin/bash
# A slow {tool}: says it started, waits, then runs the real one.
if [[ " $* " == *"{args}"* ]]; then
    : > {ready}
    read -r -t 600 <> {fifo} || true
fi
exec {real} "$@"
"""


# --- what a stopped build may leave --------------------------------------------------------


def _adopt_orphans() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of `pid`, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def adopted_orphans() -> list[str]:
    """Command lines of the processes a finished build left behind.

    The shared demo server outlives builds by design (it serves the next one
    and exits on its own), so it is not counted.
    """
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _stat(pid)
        if stat is None or stat[0] != os.getpid():
            continue
        command = cmdline(pid)
        if stat[1] == "Z":
            os.waitpid(pid, os.WNOHANG)  # an orphan that ended: nothing left of it
        elif "eib.execute.demo_share" not in command and pid not in _OURS:
            left.append(f"{pid} {command}")
    return left


_OURS: set[int] = set()  # children this test started itself (builds still being waited for)


def mounts_under(path: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(f"{path}/"):
            found.append(point)
    return found


def temp_dirs_of(tmpdir: Path, pid: int) -> list[Path]:
    return list(tmpdir.glob(f"eib-tmp-*/{pid}.*"))


# --- the cases ---------------------------------------------------------------------------


@dataclass
class Rig:
    site: Site
    tmpdir: Path
    bin: Path
    gnupg: Path  # a keyring holding the image signing key
    key: str


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", *args], check=True,
                          capture_output=True, text=True).stdout


def _signing_key(home: Path) -> str:
    """A passphrase-less key in its own keyring; its agent runs before any build, as on
    a signing host."""
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Image Signing <sign@eib.invalid>",
         "ed25519", "sign", "never")
    out = _gpg(home, "--with-colons", "--list-secret-keys")
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="module")
def rig(site: Site) -> Iterator[Rig]:
    gnupg = site.top / "gnupg"
    key = _signing_key(gnupg)
    _adopt_orphans()
    # Servers other tests' fixtures started (Redis, moto) are this process's
    # children already: not left by a build.
    _OURS.update(int(line.split()[0]) for line in adopted_orphans())
    tmpdir = site.top / "tmp"
    tmpdir.mkdir(mode=0o700, exist_ok=True)
    try:
        yield Rig(site, tmpdir, site.top / "bin", gnupg, key)
    finally:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "all"], check=False)


def slow_tool(rig: Rig, step: Step) -> dict[str, str]:
    """The PATH that puts a slow `step.tool` first."""
    if rig.bin.exists():
        shutil.rmtree(rig.bin)
    rig.bin.mkdir()
    real = shutil.which(step.tool)
    assert real, f"{step.tool} is not installed"
    fifo = rig.bin / "wait"
    os.mkfifo(fifo)
    wrapper = rig.bin / step.tool
    wrapper.write_text(WRAPPER.format(tool=step.tool, args=step.args or " ", real=real,
                                      ready=rig.site.top / step.ready, fifo=fifo))
    wrapper.chmod(0o755)
    return {"PATH": f"{rig.bin}{os.pathsep}{os.environ['PATH']}"}


def stop_at(rig: Rig, step: Step, sig: signal.Signals, name: str
            ) -> tuple[subprocess.Popen[str], str, str, float]:
    """Run a build, send `sig` once `step` started; (process, stdout, stderr, seconds it took)."""
    site = rig.site
    ready = site.top / step.ready
    ready.unlink(missing_ok=True)
    env = {**eib_env(), "TMPDIR": str(rig.tmpdir)}
    extra: list[str] = ["--no-cache"]
    if step.tool:
        env.update(slow_tool(rig, step))
    recipe = site.recipe(name, dict(step.hooks))
    if step.signed:
        with recipe.open("a") as f:
            f.write(f"image: {{signing_keyid: {rig.key}, gpg_homedir: {rig.gnupg}}}\n")
    proc = subprocess.Popen(site.argv(recipe, *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    _OURS.add(proc.pid)
    try:
        started = wait_for(lambda: ready.exists() or proc.poll() is not None, 300)
        if not started or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the build never reached {step.where}: {proc.communicate()[1][-3000:]}")
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _OURS.discard(proc.pid)
    return proc, stdout, stderr, took


def assert_clean_after(rig: Rig, pid: int) -> None:
    site = rig.site
    # Processes are ended before eib exits; give a killed one's exit a moment to land.
    time.sleep(0.5)
    assert adopted_orphans() == []
    assert mounts_under(site.work) == []
    assert temp_dirs_of(rig.tmpdir, pid) == []
    assert not [p.name for p in site.out.iterdir() if p.name.startswith(".eib-")]


def assert_previous_kept_and_failure_recorded(site: Site, text: str) -> None:
    now = digests(site.out)
    assert {k: v for k, v in now.items() if not k.startswith("failed/")} == site.previous
    failed = site.out / "failed"
    names = sorted(p.name for p in failed.iterdir())
    assert "FAILED" in names and "build.txt" in names, names
    # Nothing of the stopped build looks like an image.
    assert not [n for n in names if ".img" in n], names
    assert text in (failed / "FAILED").read_text()


@pytest.mark.parametrize("sig", list(SIGNALS), ids=lambda s: s.name)
@pytest.mark.parametrize("name", list(STEPS))
def test_a_signal_at_each_step_stops_the_build_cleanly(
    rig: Rig, name: str, sig: signal.Signals
) -> None:
    step = STEPS[name]
    proc, _, stderr, took = stop_at(rig, step, sig, name)
    assert proc.returncode == SIGNALS[sig], stderr[-3000:]
    assert stderr == f"eib: interrupted during {step.where}\n"
    assert took < 30
    assert_clean_after(rig, proc.pid)
    assert_previous_kept_and_failure_recorded(rig.site, f"interrupted during {step.where}")
    log = (rig.site.out / "failed" / "build.txt").read_text()
    assert f"interrupted during {step.where} ({sig.name})" in log


@pytest.mark.parametrize("name", list(STEPS))
def test_sigkill_at_each_step_leaves_nothing_the_next_run_does_not_reclaim(
    rig: Rig, name: str
) -> None:
    """SIGKILL cannot be caught: the previous build must stay as it was, no image
    may appear under a final name, and the next run (here a short `--stages
    ostree` one) must end the killed build's processes, detach its mounts and
    remove its temporary and staging dirs."""
    site, step = rig.site, STEPS[name]
    proc, _, _, _ = stop_at(rig, step, signal.SIGKILL, f"killed-{name}")
    assert proc.returncode == -signal.SIGKILL
    now = digests(site.out)
    assert {k: v for k, v in now.items() if not k.startswith("failed/")} == site.previous
    assert [p.name for p in site.out.glob(".eib-*")] == [f".eib-new-{proc.pid}"]
    assert sorted(site.final_image_names()) == sorted(
        n for n in site.previous if n.endswith(IMAGE_SUFFIXES))

    # The next run shares the work dir (and host), not the output dir: the previous
    # build stays for the next case.  (test_outputs checks that a run of the same
    # output dir removes the staging dir.)
    argv = site.argv(site.recipe("plain"), "--stages", "ostree", "--no-cache",
                     "--output-dir", site.top / "next-out")
    after = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                           env={**eib_env(), "TMPDIR": str(rig.tmpdir)})
    assert after.returncode == 0, after.stderr[-3000:]
    time.sleep(0.5)
    assert adopted_orphans() == []
    assert mounts_under(site.work) == []
    assert temp_dirs_of(rig.tmpdir, proc.pid) == []
    _remove(site.out / f".eib-new-{proc.pid}")


# --- full file systems -------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "eib-full",
                    str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-R", "-l", str(path)], check=False)
        _remove(path)


@pytest.mark.parametrize(("which", "size"), [
    pytest.param("cache", "4m", id="cache"),
    pytest.param("work", "2m", id="work"),
])
def test_a_full_work_or_cache_dir_is_named_and_leaves_nothing_behind(
    rig: Rig, which: str, size: str
) -> None:
    """The demo's deployment does not fit in a 2 MiB work dir, its commit not in a
    4 MiB cache dir."""
    site = rig.site
    with small_tmpfs(site.top / f"full-{which}", size) as full:
        argv = site.argv(site.recipe("plain"), "--no-cache", f"--{which}-dir", full)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**eib_env(), "TMPDIR": str(rig.tmpdir)})
        _OURS.add(proc.pid)
        try:
            _, stderr = proc.communicate(timeout=600)
        finally:
            _OURS.discard(proc.pid)
        assert os.path.ismount(full), f"the {which} dir's own file system was unmounted"
        assert proc.returncode == 1, stderr[-3000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr[-3000:]
        assert lines[0].startswith("eib: build failed: "), lines[0]
        assert f": no space left on {full}" in lines[0], lines[0]
        assert "Traceback" not in stderr
        assert adopted_orphans() == []
        assert mounts_under(full) == []
        assert temp_dirs_of(rig.tmpdir, proc.pid) == []
    assert_previous_kept_and_failure_recorded(site, f"no space left on {full}")


def test_the_next_build_succeeds_and_replaces_the_previous_one(rig: Rig) -> None:
    site = rig.site
    proc = site.run(site.recipe("plain"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (site.out / "failed").exists()
    assert not (site.out / "FAILED").exists()
    assert len(site.final_image_names()) == 4
    assert not [p.name for p in site.out.iterdir() if p.name.startswith(".eib-")]
    assert adopted_orphans() == []
    assert mounts_under(site.work) == []
