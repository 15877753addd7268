"""The worked examples of LEGACY-INI.md's "Merged list options", one test each.

Each is checked through `eib legacy show-config` (what a user sees) and
against the configparser reference.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from eib.cli import app

from .conftest import BUILD_VERSION, TreeWriter
from .reference import reference_show_config


def show(config: Path, *extra: str) -> str:
    args = ["legacy", "show-config", "--config-dir", str(config),
            "--sysconfdir", str(config.parent / "sysconf"), "-p", "p1", "-a", "amd64", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def section(output: str, name: str) -> list[str]:
    block = output.split(f"[{name}]\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def reference(config: Path) -> str:
    build = {
        "product": "p1", "branch": "master", "arch": "amd64", "platform": "amd64",
        "personality": "base", "series": "master", "build_version": BUILD_VERSION,
        "srcdir": str(config.parent), "cachedir": "/var/cache/eib",
        "sysconfdir": str(config.parent / "sysconf"), "localdir": "", "localdatadir": "",
    }
    return reference_show_config(config, build, localdir=None, sysconfdir=config.parent / "sysconf")


def test_exact_add_key_is_renamed_after_the_file_s_other_keys(write_tree: TreeWriter) -> None:
    # `hooks_add = a` then `hooks_add_extra = b` gives hooks_add_extra, hooks_add_defaults.
    config = write_tree({"config/defaults.ini": "[image]\nhooks_add = a\nhooks_add_extra = b\n"})
    output = show(config)
    assert "hooks = b\n\ta\n" in output
    assert output == reference(config)


def test_suffixed_keys_keep_their_first_place(write_tree: TreeWriter) -> None:
    # defaults: hooks_add_extra = c; product/p1: hooks_add = a, hooks_add_mandatory = m;
    # arch/amd64: hooks_add_extra = e  →  hooks = e m a.
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add_extra = c\n",
            "config/product/p1.ini": "[image]\nhooks_add = a\nhooks_add_mandatory = m\n",
            "config/arch/amd64.ini": "[image]\nhooks_add_extra = e\n",
        }
    )
    output = show(config)
    assert "hooks = e\n\tm\n\ta\n" in output
    assert output == reference(config)


def test_add_and_del_globs_take_keys_like_hooks_added(write_tree: TreeWriter) -> None:
    config = write_tree(
        {"config/defaults.ini": "[image]\nhooks_added = x y\nhooks_deleted = y\nhooks_add = z\n"}
    )
    output = show(config)
    assert "hooks = x\n\tz\n" in output
    assert "hooks_added" not in output and "hooks_deleted" not in output
    assert output == reference(config)


def test_default_keys_join_every_section_of_their_file(write_tree: TreeWriter) -> None:
    # `[DEFAULT] hooks_add_x = d` takes part in every merged `hooks` of that file.
    config = write_tree(
        {
            "config/defaults.ini": "[DEFAULT]\nhooks_add_x = d\n\n[image]\nhooks_add = a\n\n"
            "[content]\nhooks_add_x = own\n",
            "config/product/p1.ini": "[publish]\nhooks_add = p\n",
        }
    )
    output = show(config)
    # DEFAULT's keys come after [image]'s own: `hooks_add_x` is a plain key of the
    # first pass, `hooks_add` is renamed in the second, so d comes first.
    assert "hooks = d\n\ta\n" in output.split("[image]\n", 1)[1]
    assert "hooks = own\n" in output.split("[content]\n", 1)[1]
    assert "hooks = p\n" in output.split("[publish]\n", 1)[1]  # not p1's file: no d
    assert "[DEFAULT]" not in output
    assert output == reference(config)


def test_plain_option_wins_and_every_remote_shows_its_lists(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add = a\nhooks = only\n\n"
            "[flatpak-remote-x]\nurl = https://example.org\n",
        }
    )
    output = show(config)
    assert "hooks = only\n" in output
    assert section(output, "flatpak-remote-x") == [
        "url = https://example.org", "apps = ", "runtimes = ", "exclude = ",
        "allow_extra_data = ",
    ]
    assert output == reference(config)
