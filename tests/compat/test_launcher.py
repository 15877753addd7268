"""compat/eos-image-builder: the legacy command line, run as a subprocess."""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import BUILD_VERSION, EPOCH, FIXTURE
from .reference import reference_show_config
from .test_legacy_tree import DEFAULTS, KEY, write

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "compat" / "eos-image-builder"
DEFAULT_LOCK = Path("/var/lock/eos-image-builder.lock")


def launcher_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    env["SOURCE_DATE_EPOCH"] = EPOCH
    env.update(extra)
    return env


def launch(
    *args: str,
    launcher: Path = LAUNCHER,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(launcher), *args],
        capture_output=True,
        text=True,
        env=env or launcher_env(),
        cwd=cwd,
        check=False,
        timeout=120,
    )


def load_launcher() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("eos_image_builder", str(LAUNCHER))
    spec = importlib.util.spec_from_loader("eos_image_builder", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_show_config_on_the_checkout_tree(tmp_path: Path) -> None:
    result = launch("--show-config", "-p", "eos", "-P", "es", "-a", "amd64", "master", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    build = {
        "product": "eos",
        "branch": "master",
        "arch": "amd64",
        "platform": "amd64",
        "personality": "es",
        "series": "master",
        "build_version": BUILD_VERSION,
        "srcdir": str(ROOT),
        "cachedir": "/var/cache/eib",
        "sysconfdir": "/etc/eos-image-builder",
        "localdir": "",
        "localdatadir": "",
    }
    assert result.stdout == reference_show_config(
        ROOT / "config", build, localdir=None, sysconfdir=Path("/etc/eos-image-builder")
    )
    assert "[flatpak-remote-eib-demo]\n" in result.stdout


def test_show_config_with_localdir_and_personality_inheritance() -> None:
    result = launch(
        "--config-dir",
        str(FIXTURE / "config"),
        "--sysconfdir",
        str(FIXTURE / "sysconf"),
        "--show-config",
        "-p",
        "eos",
        "-P",
        "es_GT",
        "-d",
        str(FIXTURE / "local"),
        "--arch",
        "arm64",
        "eos5.1",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "series = eos5\n" in out
    assert (
        "apps = com.endlessm.animals\n\tcom.endlessm.photos\n\tcom.endlessm.encyclopedia.es\n"
        "\tcom.endlessm.guatemala\n" in out
    )
    assert "hunter2" not in out and "0123456789ABCDEF" not in out


def test_show_config_from_a_fresh_copy_of_the_checkout(tmp_path: Path) -> None:
    copy = tmp_path / "checkout"
    for part in ("eib", "compat", "config", "hooks"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    result = launch(
        "--show-config",
        "-P",
        "es",
        "-a",
        "amd64",
        launcher=copy / "compat" / "eos-image-builder",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"srcdir = {copy}\n" in result.stdout


def test_bad_arch_and_bad_tree_are_reported() -> None:
    bad = launch("--show-config", "-a", "sparc")
    assert bad.returncode == 2 and "invalid choice: 'sparc'" in bad.stderr
    missing = launch("--config-dir", "/nonexistent", "--show-config", "-a", "amd64")
    assert missing.returncode == 2
    assert missing.stderr == "eib: error: /nonexistent: legacy config dir not found\n"


def test_command_line_mapping() -> None:
    launcher = load_launcher()
    parse = launcher.parser().parse_args
    config = str(ROOT / "config")
    assert launcher.eib_argv(
        parse(["-n", "-p", "eos", "-d", "/site", "--lock-timeout", "5", "eos5.1"])
    ) == [
        "run",
        config,
        "--branch",
        "eos5.1",
        "--product",
        "eos",
        "--localdir",
        "/site",
        "--lock-timeout",
        "5",
        "--dry-run",
    ]
    assert launcher.eib_argv(
        parse(["--show-apps", "--trim", "300", "--group-by", "nature", "-P", "pt_BR"])
    ) == [
        "apps",
        config,
        "--branch",
        "master",
        "--personality",
        "pt_BR",
        "--group-by",
        "nature",
        "--trim",
        "300",
    ]
    assert launcher.eib_argv(parse(["--show-apps", "1000"]))[-2:] == ["--trim", "1000"]
    assert launcher.eib_argv(
        parse(["--personalities", "en", "--platform", "rpi4", "--show-config"])
    )[:2] == ["legacy", "show-config"]


def test_every_legacy_option_is_accepted_and_translated() -> None:
    launcher = load_launcher()
    parse = launcher.parser().parse_args
    config = str(ROOT / "config")
    defaults = parse([])
    assert (defaults.branch, defaults.lock_timeout, defaults.group_by) == ("master", 60, "runtime")
    # No product/personality/arch given: eib's defaults are the legacy ones (eoscustom, base).
    assert launcher.eib_argv(defaults) == ["run", config, "--branch", "master",
                                           "--lock-timeout", "60"]
    full = parse(["-p", "eos", "-a", "arm64", "--platform", "rpi4", "-P", "es_GT", "-d", "/site",
                  "-n", "--debug", "--use-production-ostree", "--lock-timeout", "5", "eos5.1"])
    assert launcher.eib_argv(full) == [
        "run", config, "--branch", "eos5.1", "--product", "eos", "--arch", "arm64",
        "--platform", "rpi4", "--personality", "es_GT", "--localdir", "/site",
        "--use-production-ostree", "--lock-timeout", "5", "--dry-run",
    ]
    assert full.debug and launcher.takes_lock(full)
    # The deprecated alias means the same, in every mode.
    for mode in ([], ["--show-config"], ["--show-apps"], ["--show-apps", "--group-by", "nature"]):
        argv = launcher.eib_argv(parse([*mode, "--use-production"]))
        assert argv.count("--use-production-ostree") == 1, argv
    assert not launcher.takes_lock(parse(["--show-config"]))
    assert not launcher.takes_lock(parse(["--show-apps", "--trim", "10"]))
    # A negative legacy timeout meant one attempt; eib's own lock is then not waited for.
    assert launcher.eib_argv(parse(["--lock-timeout", "-3"]))[-2:] == ["--lock-timeout", "0"]


def test_lock_timeout_is_a_count_of_attempts() -> None:
    bad = launch("--lock-timeout", "2.5", "--show-config")
    assert bad.returncode == 2 and "invalid int value: '2.5'" in bad.stderr


# -- the legacy builder's lock ----------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def pid_in(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


@contextlib.contextmanager
def holder(path: Path) -> Iterator[int]:
    """Another process holding `flock` on `path`, its pid written in the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["flock", str(path), "sh", "-c", 'echo $$ > "$0"; exec sleep 120', str(path)]
    )
    sleeper = 0  # flock's child, which the holder's pid names
    try:
        wait_for(lambda: pid_in(path).endswith("\n"), "the holder")
        sleeper = int(path.read_text())
        yield sleeper
    finally:
        if sleeper:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sleeper, 15)
        proc.terminate()
        proc.wait(timeout=10)


def lock_env(tmp_path: Path) -> dict[str, str]:
    return launcher_env(
        EIB_LEGACY_LOCKFILE=str(tmp_path / "lock" / "eos-image-builder.lock"),
        EIB_CACHE_DIR=str(tmp_path / "cache"),
        EIB_WORK_DIR=str(tmp_path / "work"),
        EIB_OUTPUT_DIR=str(tmp_path / "out"),
    )


def legacy_tree(tmp_path: Path, *, prod: bool = True) -> tuple[Path, Path]:
    """(config dir, localdir) of a legacy-shaped tree that plans offline."""
    src, local = tmp_path / "src", tmp_path / "local"
    defaults = DEFAULTS if prod else DEFAULTS.replace("prod_pull_url", "# prod_pull_url")
    write(src / "config" / "defaults.ini", defaults)
    write(src / "data" / "keys" / "eos-ostree.asc", KEY.read_text())
    write(src / "data" / "settings" / "base.gschema.override", "[org.gnome.desktop]\n")
    write(src / "hooks" / "image" / "50-hello", "#!/bin/sh\necho hello\n")
    local.mkdir()
    return src / "config", local


def test_a_held_lock_fails_after_the_attempts_with_the_legacy_messages(tmp_path: Path) -> None:
    env = lock_env(tmp_path)
    lock = Path(env["EIB_LEGACY_LOCKFILE"])
    with holder(lock) as pid:
        start = time.monotonic()
        result = launch("--config-dir", str(tmp_path / "none"), "-a", "amd64",
                        "--lock-timeout", "3", env=env)
        elapsed = time.monotonic() - start
        assert lock.read_text() == f"{pid}\n"  # the holder's pid is left alone
    assert result.returncode == 1
    assert result.stderr == f"{lock} currently locked by pid {pid}\nCould not lock file {lock}\n"
    assert 2 <= elapsed < 30  # three attempts, one second apart


def test_two_launchers_exclude_each_other(tmp_path: Path) -> None:
    """The first holds the lock for its whole build: here, until eib's cache lock times out."""
    config, local = legacy_tree(tmp_path)
    env = lock_env(tmp_path)
    lock = Path(env["EIB_LEGACY_LOCKFILE"])
    args = ["--config-dir", str(config), "-d", str(local), "-p", "eos", "-a", "amd64"]
    with holder(tmp_path / "cache" / "lock") as cache_holder:
        first = subprocess.Popen(
            [str(LAUNCHER), *args, "--lock-timeout", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            wait_for(lambda: pid_in(lock) == f"{first.pid}\n", "the first launcher's pid")
            second = launch(*args, "--lock-timeout", "2", env=env)
            assert first.poll() is None, first.communicate()
            _, first_err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert second.returncode == 1
    assert second.stderr == (
        f"{lock} currently locked by pid {first.pid}\nCould not lock file {lock}\n"
    )
    # The first one went on to eib's own lock, holding the legacy one all along.
    assert first.returncode != 0
    assert f"is locked by another eib run (pid {cache_holder})" in first_err
    # Released with the process: the next build takes it at once and writes its pid.
    third = subprocess.Popen(
        [str(LAUNCHER), "--config-dir", str(tmp_path / "none"), "--lock-timeout", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    _, third_err = third.communicate(timeout=60)
    assert third.returncode == 2 and "locked" not in third_err, third_err
    assert lock.read_text() == f"{third.pid}\n"


def test_informational_modes_take_no_lock(tmp_path: Path) -> None:
    env = lock_env(tmp_path)
    with holder(Path(env["EIB_LEGACY_LOCKFILE"])):
        shown = launch("--show-config", "-a", "amd64", "--lock-timeout", "1", env=env)
        apps = launch("--config-dir", str(tmp_path / "none"), "--show-apps",
                      "--lock-timeout", "1", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == "" and "[build]\n" in shown.stdout
    # Straight to eib, which finds no tree (a lock failure would be exit 1).
    assert apps.returncode == 2
    assert "locked" not in apps.stderr and "not found" in apps.stderr


@pytest.mark.parametrize("switch", ["--use-production-ostree", "--use-production"])
def test_the_production_switch_reaches_the_plan(tmp_path: Path, switch: str) -> None:
    config, local = legacy_tree(tmp_path, prod=False)
    env = lock_env(tmp_path)
    proc = subprocess.Popen(
        [str(LAUNCHER), "--config-dir", str(config), "-d", str(local), "-p", "eos",
         "-a", "amd64", switch, "-n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    _, err = proc.communicate(timeout=120)
    # The plan asks for prod_pull_url, which this tree lacks: refused before building.
    assert proc.returncode == 2
    assert "ostree.prod_url is not set" in err and "Traceback" not in err
    assert Path(env["EIB_LEGACY_LOCKFILE"]).read_text() == f"{proc.pid}\n"


def test_debug_logs_on_stderr() -> None:
    result = launch("--debug", "--show-config", "-a", "amd64")
    assert result.returncode == 0, result.stderr
    assert " DEBUG eib.compat: reading " in result.stderr


def test_the_default_lock_file_is_the_legacy_one(tmp_path: Path) -> None:
    """The real host path, briefly: another builder on this host may hold it."""
    env = lock_env(tmp_path)
    del env["EIB_LEGACY_LOCKFILE"]
    proc = subprocess.Popen(
        [str(LAUNCHER), "--config-dir", str(tmp_path / "none"), "--lock-timeout", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 1:
        assert err.startswith(f"{DEFAULT_LOCK} currently locked by pid ")
        assert err.endswith(f"Could not lock file {DEFAULT_LOCK}\n")
    else:
        assert proc.returncode == 2 and "locked" not in err, err
        assert pid_in(DEFAULT_LOCK) == f"{proc.pid}\n"
