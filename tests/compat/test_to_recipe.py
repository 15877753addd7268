"""INI → raw recipe dict: sections map onto the recipe model and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from eib.compat.to_recipe import is_legacy_tree, load_legacy_tree
from eib.errors import UserError

from .conftest import FIXTURE, TreeWriter


def test_fixture_maps_onto_the_recipe_sections() -> None:
    result = load_legacy_tree(
        FIXTURE / "config",
        {"product": "eosnonfree", "personality": "es_GT", "arch": "arm64"},
        localdir=FIXTURE / "local",
        sysconfdir=FIXTURE / "sysconf",
        srcdir=None,
    )
    raw = result.recipe
    assert raw["build"]["product"] == "eosnonfree"
    assert raw["ostree"]["ref"] == "os/eosnonfree/arm64/master"
    assert raw["ostree"]["pull_retries"] == 3
    assert raw["image"]["compression"] == "zstd"
    assert raw["image"]["boot_zip"] is True
    assert raw["hooks"]["image"] == ["50-hostname", "60-arm-boot", "90-system", "80-site"]
    assert raw["hooks"]["content"] == ["10-content"]
    flathub = raw["flatpak"]["remotes"]["flathub"]
    assert flathub["apps"] == [
        "org.gnome.Calculator",
        "org.gnome.Maps",
        "com.example.Quetzal",
        "com.spotify.Client",
    ]
    assert flathub["allow_extra_data"] == ["com.spotify.Client"]
    assert raw["flatpak"]["remotes"]["site"]["apps"] == [
        "com.example.SiteApp",
        "com.example.SecretApp",
    ]
    assert raw["publish"]["targets"] == [{"kind": "s3", "bucket": "private-bucket"}]
    assert raw["custom"]["motd"] == "Line one\nline two"
    assert raw["extra"]["image"]["branding_logo"] == str(FIXTURE / "data" / "logo.png")
    assert raw["extra"]["flatpak-remote-site"]["token"] == "site-secret-token"
    assert raw["secrets"]["image.signing_keyid"] == {"value": "0123456789ABCDEF"}
    assert ("flatpak-remote-site", "token") in result.private_keys
    assert "EIB_FLATPAK_REMOTE_SITE_APPS" in result.private_env
    assert result.env["EIB_IMAGE_SIGNING_KEYID"] == "0123456789ABCDEF"
    origin = result.origins[("image", "compression")]
    assert origin.file.endswith("config/product/eosnonfree.ini") and origin.line == 2
    assert result.recipe_origins[("image", "compression")] == origin
    assert is_legacy_tree(FIXTURE / "config") and not is_legacy_tree(FIXTURE)


def test_dollar_signs_survive_recipe_interpolation(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[custom]\nprice = $$5 ${build:arch}\n"})
    result = load_legacy_tree(config, {"arch": "amd64"}, sysconfdir=config.parent / "sysconf")
    assert result.sections["custom"]["price"] == "$5 amd64"
    assert result.recipe["custom"]["price"] == "$$5 amd64"


def test_bad_typed_value_names_file_line_key(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[image]\n\nboot_zip = maybe\n"})
    with pytest.raises(
        UserError, match=r"defaults.ini:3: \[image\] boot_zip: 'maybe' is not a boolean"
    ):
        load_legacy_tree(config, {"arch": "amd64"}, sysconfdir=config.parent / "sysconf")


def test_eib_own_legacy_tree_builds_a_valid_recipe() -> None:
    own = Path(__file__).resolve().parents[2] / "config"
    result = load_legacy_tree(own, {"arch": "amd64"}, sysconfdir=own / "no-such-sysconfdir")
    assert result.recipe["demo"] == {"serve": True, "port": 8690, "os": "busybox"}
    assert result.recipe["ostree"]["url"] == "http://127.0.0.1:8690/ostree"


def test_eib_own_defaults_document_every_recipe_option() -> None:
    import re

    from pydantic import BaseModel

    from eib.model import recipe as model

    text = (Path(__file__).resolve().parents[2] / "config" / "defaults.ini").read_text()
    sections: dict[str, type[BaseModel]] = {
        "ostree": model.Ostree,
        "image": model.Image,
        "flatpak": model.Flatpak,
        "flatpak-remote-eib-demo": model.FlatpakRemote,
        "demo": model.Demo,
    }
    missing = []
    for section, cls in sections.items():
        body = text.split(f"\n[{section}]\n", 1)[1].split("\n[", 1)[0]
        for name in cls.model_fields:
            if name == "remotes":
                continue
            if not re.search(rf"^[#; ]*{name}(_add)? *=|\b{name}_add\b", body, re.M):
                missing.append(f"{section}.{name}")
    for name in sorted({f for cls in model.TARGET_MODELS.values() for f in cls.model_fields}):
        if not re.search(rf"^# {name} *=", text, re.M):
            missing.append(f"publish-target.{name}")
    assert not missing


def test_private_values_are_tokens_in_the_plan_and_read_again_at_run_time() -> None:
    from eib.compile.compiler import compile_recipe
    from eib.secrets import runtime_env

    plan = compile_recipe(
        FIXTURE / "config",
        {"product": "eos", "personality": "es", "arch": "amd64"},
        localdir=FIXTURE / "local",
    ).plan
    assert plan.env["EIB_IMAGE_SIGNING_KEYID"] == "<secret:image.signing_keyid>"
    assert plan.image.signing_keyid == "<secret:image.signing_keyid>"
    assert "0123456789ABCDEF" not in plan.to_json() and "hunter2" not in plan.to_json()
    values = runtime_env(plan)
    assert values["EIB_IMAGE_SIGNING_KEYID"] == "0123456789ABCDEF"
    assert values["EIB_FLATPAK_REMOTE_SITE_APPS"] == "com.example.SiteApp\ncom.example.SecretApp"
    assert values["EIB_SITE_CREDENTIALS_PASSWORD"] == "hunter2"
    assert values["EIB_IMAGE_COMPRESSION"] == plan.env["EIB_IMAGE_COMPRESSION"]
