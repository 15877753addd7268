"""schema.ini: each suffix, each error, builder's and localdir's schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eib.compat.reader import read_tree
from eib.compat.schema import check_schema, schema_files
from eib.errors import UserError

from .conftest import FIXTURE, TreeWriter


def check(config: Path, localdir: Path | None = None) -> None:
    cfg = read_tree(
        config, {"arch": "amd64"}, localdir=localdir, sysconfdir=config.parent / "sysconf"
    )
    check_schema(cfg, schema_files(config, localdir), srcdir=config.parent)


def test_required(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[ostree]\nurl_required = true\nref_required = false\n",
            "config/defaults.ini": "[ostree]\nremote = eos\n",
        }
    )
    with pytest.raises(
        UserError, match=r"schema.ini:2: \[ostree\] url: required option is not set"
    ):
        check(config)
    (config / "local.ini").write_text("[ostree]\nurl = http://x\n")
    check(config)


def test_values(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[image]\ncompression_values = gz xz zstd\n",
            "config/defaults.ini": "[image]\ncompression = ${build:arch}\n",
        }
    )
    with pytest.raises(UserError) as err:
        check(config)
    assert "defaults.ini:2: [image] compression: value 'amd64' is not one of: gz xz zstd" in str(
        err.value
    )
    (config / "local.ini").write_text("[image]\ncompression = zstd\n")
    check(config)


def test_values_unset_is_fine(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[image]\ncompression_values = gz\n",
            "config/defaults.ini": "[image]\n",
        }
    )
    check(config)


def test_type_path(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[image]\nlogo_type = path\n",
            "config/defaults.ini": "[image]\nlogo = ${build:srcdir}/data/logo.png\n",
        }
    )
    with pytest.raises(
        UserError, match=r"\[image\] logo: file '.*/src/data/logo.png' does not exist"
    ):
        check(config)
    (config.parent / "data").mkdir()
    (config.parent / "data" / "logo.png").write_text("x")
    check(config)
    (config / "local.ini").write_text("[image]\nlogo =\n")
    check(config)  # empty means unset


def test_type_paths(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[image]\nextra_type = paths\n",
            "config/defaults.ini": "[image]\nextra = a.txt\n  b.txt\n",
            "a.txt": "a",
        }
    )
    with pytest.raises(UserError, match=r"\[image\] extra: file 'b.txt' does not exist"):
        check(config)
    (config.parent / "b.txt").write_text("b")
    check(config)


def test_unknown_type_is_a_schema_error(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[image]\nlogo_type = directory\n",
            "config/defaults.ini": "[image]\nlogo = x\n",
        }
    )
    with pytest.raises(
        UserError, match=r"schema.ini:2: \[image\] logo_type: unknown _type 'directory'"
    ):
        check(config)


def test_suffixless_schema_keys_are_ignored(write_tree: TreeWriter) -> None:
    # The legacy builder's own schema.ini has keys such as `settings = paths`.
    config = write_tree(
        {
            "config/schema.ini": "[image]\nsettings = paths\nlogo_needed = true\n"
            "logo_required = true\n",
            "config/defaults.ini": "[image]\nsettings = /nonexistent\n",
        }
    )
    with pytest.raises(UserError, match=r"\[image\] logo: required option is not set"):
        check(config)
    (config / "defaults.ini").write_text("[image]\nsettings = /nonexistent\nlogo = x\n")
    check(config)


def test_localdir_schema_is_applied_too(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\ntimezone = Europe/Paris\n",
            "local/config/schema.ini": "[image]\ntimezone_values = Europe/Madrid\n",
        }
    )
    check(config)
    with pytest.raises(UserError, match="value 'Europe/Paris' is not one of: Europe/Madrid"):
        check(config, localdir=config.parent / "local")


def test_private_values_are_redacted_in_schema_errors(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/schema.ini": "[image]\nsigning_keyid_values = A B\n",
            "config/private.ini": "[image]\nsigning_keyid = TOPSECRET\n",
        }
    )
    with pytest.raises(UserError) as err:
        check(config)
    assert "TOPSECRET" not in str(err.value) and "<redacted>" in str(err.value)


def test_show_config_reports_schema_violation_exit_2(tmp_path: Path) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(FIXTURE, tree)
    (tree / "config" / "local.ini").write_text("[image]\ncompression = lzma\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eib.cli",
            "legacy",
            "show-config",
            "--config-dir",
            str(tree / "config"),
            "-a",
            "amd64",
            "--sysconfdir",
            str(tree / "sysconf"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"eib: error: {tree}/config/local.ini:2: [image] compression: "
        "value 'lzma' is not one of: gz xz zstd\n"
    )
