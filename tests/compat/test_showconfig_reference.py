"""`eib legacy show-config` equals a configparser reference for every fixture variant."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import typer
from click.testing import CliRunner

from eib.cli import app

from .conftest import BUILD_VERSION, FIXTURE
from .reference import reference_show_config

PRODUCTS = ["eos", "eosnonfree", "eosdev", "eoscustom"]
BRANCHES = ["master", "eos5.0", "eos5.1"]
MACHINES = [("amd64", None), ("arm64", None), ("arm64", "rpi4")]
PERSONALITIES = ["base", "es", "es_GT", "en"]
# Built once: typer rebuilds its click command on every invoke otherwise.
COMMAND = typer.main.get_command(app)
VARIANTS = list(itertools.product(PRODUCTS, BRANCHES, MACHINES, PERSONALITIES))


def expected_build(
    product: str,
    branch: str,
    arch: str,
    platform: str | None,
    personality: str,
    localdir: Path | None,
) -> dict[str, str]:
    return {
        "product": product,
        "branch": branch,
        "arch": arch,
        "platform": platform or arch,
        "personality": personality,
        "series": branch.rsplit(".", 1)[0],
        "build_version": BUILD_VERSION,
        "srcdir": str(FIXTURE),
        "cachedir": "/var/cache/eib",
        "sysconfdir": str(FIXTURE / "sysconf"),
        "localdir": str(localdir) if localdir else "",
        "localdatadir": str(localdir / "data") if localdir else "",
    }


@pytest.mark.parametrize("with_local", [False, True], ids=["builder-only", "localdir"])
def test_show_config_matches_reference_for_every_variant(with_local: bool) -> None:
    runner = CliRunner()
    localdir = FIXTURE / "local" if with_local else None
    mismatches = []
    for product, branch, (arch, platform), personality in VARIANTS:
        args = [
            "legacy",
            "show-config",
            "--config-dir",
            str(FIXTURE / "config"),
            "--sysconfdir",
            str(FIXTURE / "sysconf"),
            "--product",
            product,
            "--branch",
            branch,
            "--arch",
            arch,
            "--personality",
            personality,
        ]
        if platform:
            args += ["--platform", platform]
        if localdir:
            args += ["--localdir", str(localdir)]
        build = expected_build(product, branch, arch, platform, personality, localdir)
        for resolved in (False, True):
            result = runner.invoke(COMMAND, args + (["--resolved"] if resolved else []))
            assert result.exit_code == 0, (args, result.output)
            expected = reference_show_config(
                FIXTURE / "config",
                build,
                localdir=localdir,
                sysconfdir=FIXTURE / "sysconf",
                resolved=resolved,
            )
            if result.stdout != expected:
                mismatches.append((args, resolved, result.stdout, expected))
    assert not mismatches, mismatches[0]


def test_private_values_never_shown_but_used() -> None:
    runner = CliRunner()
    args = [
        "legacy",
        "show-config",
        "--config-dir",
        str(FIXTURE / "config"),
        "--sysconfdir",
        str(FIXTURE / "sysconf"),
        "--localdir",
        str(FIXTURE / "local"),
        "-p",
        "eos",
        "-P",
        "es_GT",
        "-a",
        "amd64",
    ]
    for extra in ([], ["--resolved"]):
        out = runner.invoke(COMMAND, args + extra).stdout
        for secret in (
            "0123456789ABCDEF",
            "private-bucket",
            "system-secret",
            "site-secret-token",
            "hunter2",
            "com.example.SecretApp",
            "site-credentials",
        ):
            assert secret not in out
        assert "apps = com.example.SiteApp\n" in out
