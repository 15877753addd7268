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
from .test_legacy_tree import DEV, KEY, PROD, eib, make_tree, plan_json
from .test_showconfig_reference import VARIANTS


def comparable(plan: Plan) -> dict[str, Any]:
    """The plan minus what names the recipe file itself and known differences."""
    data: dict[str, Any] = json.loads(plan.to_json())
    del data["recipe"], data["digest"]
    for secret in data["secrets"]:
        del secret["where"]  # the INI file vs the YAML layer that holds it
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


def convert(config: Path, local: Path) -> Path:
    out = config.parent  # beside config/, as docs/migration.md says
    proc = eib("convert", str(config), str(out), "--localdir", str(local))
    assert proc.returncode == 0, proc.stderr
    return out / "recipe.yaml"


def same_plan(ini: dict[str, Any], yml: dict[str, Any]) -> None:
    """Equal but for what names the recipe file (and an empty extra section)."""
    for plan in (ini, yml):
        del plan["recipe"], plan["digest"]
        for secret in plan["secrets"]:
            del secret["where"], secret["key"]  # the INI file vs the YAML layer
        plan["extra"] = {k: v for k, v in plan["extra"].items() if v != {}}
    assert ini == yml


@pytest.mark.parametrize("switch", [[], ["--use-production-ostree"]])
def test_converted_pull_urls_and_trusted_keys_plan_like_the_tree(
    tmp_path: Path, switch: list[str]
) -> None:
    config, local = make_tree(tmp_path)
    recipe = convert(config, local)
    top = yaml.safe_load(recipe.read_text())
    # The keys of data/keys and of the localdir's, relative to recipe.yaml, by full path.
    assert top["ostree"]["gpg_keys"] == ["../local/data/keys/site.asc", "data/keys/eos-ostree.asc"]
    defaults = yaml.safe_load((recipe.parent / "layers/config/defaults.yaml").read_text())
    assert defaults["ostree"]["url"] == "https://ostree.example.org/staging/dev/eos-${build:arch}"
    assert defaults["ostree"]["prod_url"] == "https://ostree.example.org/ostree/eos-${build:arch}"
    assert defaults["extra"]["ostree"]["dev_pull_url"] == defaults["ostree"]["url"]
    assert "#   ostree." not in recipe.read_text()  # every layer says it itself

    ini = plan_json(config, local, *switch)
    yml = plan_json(recipe, local, *switch)
    assert yml["ostree"]["url"] == (PROD if switch else DEV)
    assert (yml["ostree"]["prod_url"], yml["ostree"]["deploy_url"]) == (PROD, PROD)
    assert yml["ostree"]["gpg_keys"] == [KEY.read_text(), KEY.read_text()]
    assert yml["build"]["use_production_ostree"] is bool(switch)
    same_plan(ini, yml)


def test_a_converted_private_prod_url_stays_a_secret(tmp_path: Path) -> None:
    config, local = make_tree(tmp_path)
    (local / "config" / "private.ini").write_text(
        "[ostree]\nprod_pull_url = https://builder:s3cr3t@ostree.example.org/prod\n"
    )
    recipe = convert(config, local)
    private = recipe.parent / "layers" / "local" / "config" / "private.yaml"
    layer = yaml.safe_load(private.read_text())
    assert layer["ostree"]["prod_url"] == "<secret:ostree.prod_pull_url>"
    assert layer["secrets"]["ostree.prod_pull_url"]["value"].startswith("https://builder:")
    public = [p for p in recipe.parent.rglob("*.yaml") if p != private]
    assert public and not any("s3cr3t" in p.read_text() for p in public)
    ini = plan_json(config, local, "--use-production")
    yml = plan_json(recipe, local, "--use-production")
    assert yml["ostree"]["url"] == "<secret:ostree.prod_pull_url>"
    same_plan(ini, yml)


def test_a_tree_setting_url_itself_keeps_it(tmp_path: Path) -> None:
    """`url` in one file and `dev_pull_url` in another: the final value, per variant."""
    config, local = make_tree(tmp_path)
    (config / "product" / "eos.ini").write_text(
        "[image]\ncompression = xz\n\n"
        "[ostree]\nurl = https://mirror.example.org/eos\nenable_p2p_updates = true\n"
    )
    recipe = convert(config, local)
    assert "#   ostree.url: [ostree] url and dev_pull_url are both set\n" in recipe.read_text()
    eos = yaml.safe_load((recipe.parent / "layers/config/product/eos.yaml").read_text())
    assert eos["overlays"][0]["ostree"]["p2p"] is True
    for product in ("eos", "other"):
        ini = plan_json(config, local, "-p", product)
        yml = plan_json(recipe, local, "-p", product)
        mine = product == "eos"
        assert yml["ostree"]["url"] == ("https://mirror.example.org/eos" if mine else DEV)
        assert yml["ostree"]["p2p"] is mine
        same_plan(ini, yml)


def test_key_dirs_that_depend_on_the_variant(tmp_path: Path) -> None:
    config, local = make_tree(tmp_path)
    (config / "product" / "eos.ini").write_text("[build]\ndatadir = ${srcdir}/data-eos\n")
    (config.parent / "data-eos" / "keys").mkdir(parents=True)
    (config.parent / "data-eos" / "keys" / "eos.asc").write_text(KEY.read_text())
    recipe = convert(config, local)
    reason = "[build] datadir (the trusted keys' dir) depends on the variant"
    assert f"#   ostree.gpg_keys: {reason}\n" in recipe.read_text()
    for product in ("eos", "other"):
        ini = plan_json(config, local, "-p", product)
        yml = plan_json(recipe, local, "-p", product)
        assert yml["ostree"]["gpg_keys"] == [KEY.read_text(), KEY.read_text()]
        same_plan(ini, yml)


def test_converted_buildroot_settings_plan_like_the_tree(tmp_path: Path) -> None:
    """Unset, `[buildroot] enable` means auto, as `recipe.yaml` says; a product turns it off."""
    config, local = make_tree(tmp_path)
    with (config / "defaults.ini").open("a") as defaults:
        defaults.write("\n[buildroot]\nmounts_add =\n  /srv/data\n")
    (config / "product" / "eosnonfree.ini").write_text(
        "[buildroot]\nenable = false\nmounts_add = /srv/more\n")
    recipe = convert(config, local)
    assert yaml.safe_load(recipe.read_text())["build"] == {"buildroot": "auto"}
    for product, enable, mounts in (("eos", "auto", ["/srv/data"]),
                                    ("eosnonfree", False, ["/srv/data", "/srv/more"])):
        ini = plan_json(config, local, "-p", product)
        yml = plan_json(recipe, local, "-p", product)
        assert (yml["build"]["buildroot"], sorted(yml["build"]["buildroot_mounts"])) == (
            enable, mounts)
        same_plan(ini, yml)


def test_sysconfdir_references_and_untouched_merged_options_plan_like_the_tree(
    tmp_path: Path,
) -> None:
    """Found converting the legacy builder's own tree: `[build] ssh_options` names
    `${sysconfdir}`, and `[kolibri]` has no `install_channels_add`, which the tree
    still gives as an empty option."""
    config, local = make_tree(tmp_path)
    with (config / "defaults.ini").open("a") as defaults:
        defaults.write("\n[build]\nssh_options = -i ${sysconfdir}/ssh-key.pem\n"
                       "\n[kolibri]\napp_version = 0.15.12\n\n[kolibri-abc]\nname = abc\n")
    (config / "product" / "eosnonfree.ini").write_text(
        "[kolibri]\ninstall_channels = abc\n")
    recipe = convert(config, local)
    assert "zz9" not in "".join(p.read_text() for p in recipe.parent.rglob("*.yaml"))
    for product, channels in (("eos", ""), ("eosnonfree", "abc")):
        ini = plan_json(config, local, "-p", product)
        yml = plan_json(recipe, local, "-p", product)
        assert yml["extra"]["build"]["ssh_options"] == \
            "-i /etc/eos-image-builder/ssh-key.pem"
        assert yml["extra"]["kolibri"]["install_channels"] == channels
        assert yml["extra"]["kolibri-abc"]["include_node_ids"] == ""
        same_plan(ini, yml)
