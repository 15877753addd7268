"""compat/eos-image-builder: the legacy command line, run as a subprocess."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

from .conftest import BUILD_VERSION, EPOCH, FIXTURE
from .reference import reference_show_config

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "compat" / "eos-image-builder"


def launch(
    *args: str, launcher: Path = LAUNCHER, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    env["SOURCE_DATE_EPOCH"] = EPOCH
    return subprocess.run(
        [str(launcher), *args], capture_output=True, text=True, env=env, cwd=cwd, check=False
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
        "5.0",
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
