"""Layout arithmetic and sfdisk scripts (no images written)."""

from __future__ import annotations

import pytest

from eib.errors import BuildError
from eib.execute.disk_layout import (
    DPS_ROOT_GUID,
    ESP_GUID,
    GiB,
    MiB,
    extra_space,
    plan_layout,
    sfdisk_script,
)


def test_extra_space_defaults_to_five_percent_or_one_gib() -> None:
    assert extra_space(100 * MiB, None) == GiB
    assert extra_space(40 * GiB, None) == 2 * GiB
    assert extra_space(40 * GiB, 123) == 123


def test_gpt_amd64_layout() -> None:
    layout = plan_layout(
        arch="amd64",
        platform="amd64",
        table="gpt",
        root_bytes=100 * MiB,
        rootfs_resize=True,
        sdboot=False,
    )
    esp, bios, root = layout.partitions
    assert (esp.role, esp.start, esp.bytes, esp.type) == ("esp", 2048, 62 * MiB, ESP_GUID)
    assert (bios.role, bios.start, bios.bytes) == ("bios", 2048 + 62 * 2048, MiB)
    assert root.start == 2048 + 63 * 2048 and root.bytes == 100 * MiB
    assert root.type == DPS_ROOT_GUID["amd64"] and root.attrs == (55,)
    # Room for the backup GPT after the root partition.
    assert layout.size >= root.offset + root.bytes + 33 * 512


def test_sdboot_esp_is_500_mib_and_i386_root_type() -> None:
    layout = plan_layout(
        arch="i386", platform="i386", table="gpt", root_bytes=MiB, rootfs_resize=False, sdboot=True
    )
    assert layout.partitions[0].bytes == 500 * MiB
    assert layout.root.type == DPS_ROOT_GUID["i386"] and layout.root.attrs == ()


def test_arm64_pinebookpro_root_only_at_32768() -> None:
    layout = plan_layout(
        arch="arm64",
        platform="pinebookpro",
        table="gpt",
        root_bytes=MiB,
        rootfs_resize=True,
        sdboot=False,
    )
    assert [p.role for p in layout.partitions] == ["root"]
    assert layout.root.start == 32768 and layout.root.type == DPS_ROOT_GUID["arm64"]


def test_dos_layout_uses_marker_not_attributes() -> None:
    layout = plan_layout(
        arch="amd64",
        platform="amd64",
        table="dos",
        root_bytes=MiB,
        rootfs_resize=True,
        sdboot=False,
    )
    assert [(p.role, p.type, p.attrs) for p in layout.partitions] == [
        ("esp", "ef", ()),
        ("root", "83", ()),
    ]
    assert layout.resize_marker


def test_unknown_arch_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="armhf"):
        plan_layout(
            arch="armhf",
            platform="armhf",
            table="gpt",
            root_bytes=MiB,
            rootfs_resize=False,
            sdboot=False,
        )


def test_seeded_script_is_stable_and_names_guids() -> None:
    layout = plan_layout(
        arch="amd64",
        platform="amd64",
        table="gpt",
        root_bytes=MiB,
        rootfs_resize=True,
        sdboot=False,
    )
    one, two = sfdisk_script(layout, "seed-1"), sfdisk_script(layout, "seed-1")
    assert one == two and "label-id:" in one and one.count("uuid=") == 3
    assert sfdisk_script(layout, "seed-2") != one
    assert 'attrs="GUID:55"' in one
