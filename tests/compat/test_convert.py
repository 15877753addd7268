"""`eib convert`: the YAML recipes compile to the same plans as the INI tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eib.compile.compiler import compile_recipe
from eib.errors import UserError
from eib.model.plan import Plan

from .conftest import FIXTURE, TreeWriter
from .test_showconfig_reference import VARIANTS


def comparable(plan: Plan) -> dict[str, Any]:
    """The plan minus what names the recipe file itself and known differences."""
    data: dict[str, Any] = json.loads(plan.to_json())
    del data["recipe"], data["digest"]
    for secret in data["secrets"]:
        del secret["where"]  # the INI file vs the YAML layer that holds it
    # Unset, an INI tree's build.buildroot means "when the OS has bash"; a recipe's means off.
    if data["build"]["buildroot"] is None:
        data["build"]["buildroot"] = False
    return data


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("convert") / "tree"
    shutil.copytree(FIXTURE, tree)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eib.cli",
            "convert",
            str(tree / "config"),
            str(tree),
            "--localdir",
            str(tree / "local"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {tree}/recipe.yaml\n" in result.stdout
    return tree


def test_plans_equal_for_every_variant(converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    local = converted / "local"
    differences = []
    for product, branch, (arch, platform), personality in VARIANTS:
        variant = {"product": product, "branch": branch, "arch": arch, "personality": personality}
        if platform:
            variant["platform"] = platform
        ini = comparable(compile_recipe(converted / "config", variant, localdir=local).plan)
        yml = comparable(compile_recipe(converted / "recipe.yaml", variant, localdir=local).plan)
        # The same secrets, found in the INI files or in the converted private layers.
        assert [s["name"] for s in ini.pop("secrets")] == [s["name"] for s in yml.pop("secrets")]
        if ini != yml:
            differences.append((variant, [k for k in ini if ini[k] != yml.get(k)]))
    assert not differences, differences[:3]


def test_layers_name_their_source_and_conditions(converted: Path) -> None:
    pair = converted / "layers" / "config" / "product-personality" / "eos-es_GT.yaml"
    text = pair.read_text()
    assert text.startswith(
        "# Converted by `eib convert` from config/product-personality/eos-es_GT.ini.\n"
    )
    doc = yaml.safe_load(text)
    assert doc["overlays"][0]["when"] == {"product": "eos", "personality": "es_GT"}
    assert doc["overlays"][0]["flatpak"]["remotes"]["eos-apps"]["apps"] == {
        "del": ["com.endlessm.history.es"],
        "add": ["com.endlessm.guatemala"],
    }
    top = (converted / "recipe.yaml").read_text()
    assert (
        "#   flatpak.remotes.flathub.apps: [flatpak-remote-flathub] apps_add_mandatory "
        "is overridden\n" in top
    )
    extends = yaml.safe_load(top)["extends"]
    assert extends[0] == "layers/config/defaults.yaml"
    assert extends.index("layers/config/personality/es.yaml") < extends.index(
        "layers/config/personality/es_GT.yaml"
    )
    assert extends[-1] == "layers/private-final.yaml"
    assert "private-bucket" not in top
    defaults = yaml.safe_load((converted / "layers" / "config" / "defaults.yaml").read_text())
    assert defaults["ostree"]["ref"] == "os/${build:product}/${build:platform}/${build:branch}"
    assert defaults["extra"]["image"]["branding_logo"] == "${extra:build.datadir}/logo.png"
    assert defaults["flatpak"]["locales"] == {"add": ["en", "${build:personality}"]}


def test_build_attributes_set_in_files_cannot_be_converted(
    write_tree: TreeWriter, tmp_path: Path
) -> None:
    from eib.compat.convert import convert_tree

    config = write_tree({"config/defaults.ini": "[build]\n\nproduct = eos\n"})
    with pytest.raises(UserError, match=r"defaults.ini: \[build\] product: build attributes"):
        convert_tree(config, tmp_path / "out")
