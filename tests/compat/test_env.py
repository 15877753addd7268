"""The EIB_* environment: naming, booleans, multi-line values, both paths."""

from __future__ import annotations

from eib.compat.env import legacy_env
from eib.compat.reader import read_tree
from eib.compile.hookenv import sections_env
from eib.envnames import env_name

from .conftest import BUILD_VERSION, TreeWriter


def test_legacy_env_names_and_values(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[build]\nextra = ${product}-x\n"
            "[image]\nboot_zip = True\nsdboot = FALSE\nname = Truex\n"
            "[flatpak-remote-eos.apps]\napps_add = a\n  b\n[custom]\nmotd = one\n  two\n",
        }
    )
    env = legacy_env(
        read_tree(config, {"arch": "amd64", "product": "eos"}, sysconfdir=config.parent / "sysconf")
    )
    assert env["EIB_PRODUCT"] == "eos"
    assert env["EIB_BUILD_VERSION"] == BUILD_VERSION
    assert env["EIB_EXTRA"] == "eos-x"
    assert env["EIB_IMAGE_BOOT_ZIP"] == "true"
    assert env["EIB_IMAGE_SDBOOT"] == "false"
    assert env["EIB_IMAGE_NAME"] == "Truex"
    assert env["EIB_FLATPAK_REMOTE_EOS_APPS_APPS"] == "a\nb"
    assert env["EIB_CUSTOM_MOTD"] == "one\ntwo"
    assert "EIB_BUILD_PRODUCT" not in env


def test_typed_sections_use_the_same_names() -> None:
    env = sections_env(
        {
            "build": {"product": "eos", "arch": "amd64"},
            "image": {
                "boot_zip": True,
                "qcow2": False,
                "max_size": None,
                "icon_grid": ["a", "b"],
                "qcow2_extra": 0,
            },
            "flatpak": {"locales": ["es"], "remotes": {"x": {"url": "u"}}},
            "flatpak-remote-x": {"url": "u", "apps": []},
            "custom": {"flag": "TRUE"},
        }
    )
    assert env == {
        "EIB_PRODUCT": "eos",
        "EIB_ARCH": "amd64",
        "EIB_IMAGE_BOOT_ZIP": "true",
        "EIB_IMAGE_QCOW2": "false",
        "EIB_IMAGE_MAX_SIZE": "",
        "EIB_IMAGE_ICON_GRID": "a\nb",
        "EIB_IMAGE_QCOW2_EXTRA": "0",
        "EIB_FLATPAK_LOCALES": "es",
        "EIB_FLATPAK_REMOTE_X_URL": "u",
        "EIB_FLATPAK_REMOTE_X_APPS": "",
        "EIB_CUSTOM_FLAG": "true",
    }
    assert env_name("kolibri-ch.1", "include_node_ids") == "EIB_KOLIBRI_CH_1_INCLUDE_NODE_IDS"
