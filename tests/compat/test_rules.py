"""One test per rule of LEGACY-INI.md, on small trees written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from eib.compat.attributes import host_arch, personality_prefixes, series_of
from eib.compat.reader import LegacyConfig, config_sources, read_tree
from eib.compat.showconfig import show_config
from eib.errors import UserError

from .conftest import BUILD_VERSION, TreeWriter

AMD64 = {"arch": "amd64"}


def load(
    config: Path,
    variant: dict[str, str] | None = None,
    *,
    localdir: Path | None = None,
    srcdir: Path | None = None,
) -> LegacyConfig:
    return read_tree(
        config,
        {**AMD64, **(variant or {})},
        sysconfdir=config.parent / "sysconf",
        localdir=localdir,
        srcdir=srcdir,
    )


def test_file_order_attributes_pairs_and_personality_prefixes(write_tree: TreeWriter) -> None:
    files = {
        "config/defaults.ini": "[t]\nwho = defaults\n",
        "config/product/eos.ini": "[t]\nwho = product\n",
        "config/branch/eos5.ini": "[t]\nwho = branch\n",
        "config/arch/amd64.ini": "[t]\nwho = arch\n",
        "config/platform/nuc.ini": "[t]\nwho = platform\n",
        "config/personality/en.ini": "[t]\nwho = personality-en\n",
        "config/personality/en_GB.ini": "[t]\nwho = personality-en_GB\n",
        "config/product-branch/eos-eos5.ini": "[t]\nwho = product-branch\n",
        "config/product-personality/eos-en_GB.ini": "[t]\nwho = product-personality\n",
        "config/platform-personality/nuc-en.ini": "[t]\nwho = platform-personality-en\n",
    }
    config = write_tree(files)
    variant = {"product": "eos", "branch": "eos5", "platform": "nuc", "personality": "en_GB"}
    cfg = load(config, variant)
    read = [p.relative_to(config).as_posix() for p in cfg.files]
    assert read == [
        "defaults.ini",
        "product/eos.ini",
        "branch/eos5.ini",
        "arch/amd64.ini",
        "platform/nuc.ini",
        "personality/en.ini",
        "personality/en_GB.ini",
        "product-branch/eos-eos5.ini",
        "product-personality/eos-en_GB.ini",
        "platform-personality/nuc-en.ini",
    ]
    assert cfg.get("t", "who") == "platform-personality-en"
    assert cfg.sections["t"]["who"].origin.line == 2


def test_pair_files_try_every_personality_prefix_in_order(tmp_path: Path) -> None:
    values = {
        "product": "eos",
        "branch": "master",
        "arch": "amd64",
        "platform": "amd64",
        "personality": "en_GB_orkney",
    }
    sources = config_sources(tmp_path, values, sysconfdir=tmp_path / "etc", localdir=None)
    pairs = [s.path.name for s in sources if s.path.parent.name == "arch-personality"]
    assert pairs == ["amd64-en.ini", "amd64-en_GB.ini", "amd64-en_GB_orkney.ini"]
    names = [s.namespace for s in sources]
    assert "arch_personality_amd64_en_GB" in names
    assert len(names) == len(set(names))


def test_whole_order_system_local_and_private_last(write_tree: TreeWriter, tmp_path: Path) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[t]\na = builder\nb = builder\nc = builder\nd = builder\n",
            "sysconf/config.ini": "[t]\na = system\nb = system\nc = system\nd = system\n",
            "local/config/defaults.ini": "[t]\nb = localdir\nc = localdir\nd = localdir\n",
            "config/local.ini": "[t]\nc = local.ini\nd = local.ini\n",
            "sysconf/private.ini": "[t]\nd = system-private\n",
            "local/config/private.ini": "[t]\nd = local-private\n",
        }
    )
    cfg = load(config, localdir=config.parent / "local")
    assert [cfg.get("t", k) for k in "abcd"] == ["system", "localdir", "local.ini", "local-private"]
    config2 = write_tree({"config/private.ini": "[t]\nd = checkout-private\n"})
    cfg = load(config2, localdir=config.parent / "local")
    assert cfg.get("t", "d") == "checkout-private"
    assert cfg.sections["t"]["d"].private


def test_missing_files_are_skipped(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[t]\nx = 1\n"})
    cfg = load(config, {"product": "nothing", "personality": "xx_YY"})
    assert [p.name for p in cfg.files] == ["defaults.ini"]


def test_build_section_attributes(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[t]\nx = 1\n"})
    cfg = load(config, {"branch": "eos3.8"})
    build = cfg.resolved()["build"]
    assert build["product"] == "eoscustom"
    assert build["branch"] == "eos3.8"
    assert build["series"] == "eos3"
    assert build["platform"] == "amd64"
    assert build["personality"] == "base"
    assert build["build_version"] == BUILD_VERSION
    assert build["srcdir"] == str(config.parent)
    assert build["localdir"] == ""
    assert list(build)[:5] == ["product", "branch", "arch", "platform", "personality"]
    assert series_of("eos3") == "eos3" and series_of("master") == "master"


def test_srcdir_override_and_localdatadir(write_tree: TreeWriter, tmp_path: Path) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[t]\nlogo = ${build:srcdir}/data/logo.png\n",
            "local/config/defaults.ini": "[t]\nsite = ${build:localdatadir}/x\n",
        }
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    cfg = load(config, srcdir=other, localdir=config.parent / "local")
    assert cfg.get("t", "logo") == f"{other}/data/logo.png"
    assert cfg.get("t", "site") == f"{config.parent}/local/data/x"


def test_build_version_is_utc_now_without_source_date_epoch(
    write_tree: TreeWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    config = write_tree({"config/defaults.ini": ""})
    assert re.fullmatch(r"\d{6}-\d{6}", load(config).get("build", "build_version"))


def test_host_arch_detection_and_unsupported_arch(write_tree: TreeWriter) -> None:
    assert host_arch("x86_64") == "amd64"
    assert host_arch("aarch64") == "arm64"
    assert host_arch("i686") == "i386"
    with pytest.raises(UserError, match="host architecture 'riscv64' is not supported"):
        host_arch("riscv64")
    config = write_tree({"config/defaults.ini": ""})
    with pytest.raises(UserError, match="unsupported arch 'armhf'"):
        load(config, {"arch": "armhf"})
    assert personality_prefixes("en_GB_orkney") == ["en", "en_GB", "en_GB_orkney"]


def test_namespaces_rename_exact_add_del_keys(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add = a b\n",
            "config/product/eos.ini": "[image]\nhooks_add = c\nhooks_del = a\n",
            "sysconf/config.ini": "[image]\nhooks_del = b\n",
            "config/defaults-check.ini": "",
        }
    )
    cfg = read_tree(config, {**AMD64, "product": "eos"}, sysconfdir=config.parent / "sysconf")
    assert cfg.get("image", "hooks") == "c"


def test_namespaced_keys_can_be_interpolated_by_name(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add = a b\n"
            "[content]\nhooks_add = ${image:hooks_add_defaults} c\n",
        }
    )
    # content:hooks is merged before image:hooks, while image's add keys still exist.
    assert load(config).get("content", "hooks") == "a\nb\nc"


def test_suffixed_add_keys_keep_their_name_and_can_be_overridden(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[flatpak-remote-r]\napps_add_mandatory = a b c\napps_add = d\n",
            "config/product/slim.ini": "[flatpak-remote-r]\napps_add_mandatory = a\n",
        }
    )
    assert load(config).get("flatpak-remote-r", "apps") == "a\nb\nc\nd"
    assert load(config, {"product": "slim"}).get("flatpak-remote-r", "apps") == "a\nd"


def test_counting_adds_first_then_dels_first_seen_order(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_del_early = x\nhooks_add = x y z\n",
            "config/product/eos.ini": "[image]\nhooks_add = y w\nhooks_del = z y\n",
        }
    )
    # x: +1 -1 = 0 although its del stands first; y: +2 -1 = 1; z: 0; w: +1.
    assert load(config, {"product": "eos"}).get("image", "hooks") == "y\nw"


def test_merged_option_placed_last_and_empty_when_unset(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add = a\ncompression = xz\n"
            "[flatpak-remote-x]\nurl = u\n",
        }
    )
    out = show_config(load(config))
    assert "[image]\ncompression = xz\nhooks = a\nicon_grid = \nsettings = \n" in out
    assert "[flatpak-remote-x]\nurl = u\napps = \nruntimes = \nexclude = \n" in out
    assert "allow_extra_data = \n\n" in out
    assert "[content]" not in out


def test_plain_option_wins_over_add_del(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add = a b\n",
            "config/product/eos.ini": "[image]\nhooks = ${build:product}-only\n",
            "config/branch/master.ini": "[image]\nhooks_add = c\n",
        }
    )
    cfg = load(config, {"product": "eos"})
    assert cfg.get("image", "hooks") == "eos-only"
    assert next(iter(cfg.sections["image"])) == "hooks"
    assert not [k for k in cfg.sections["image"] if k.startswith("hooks_")]
    assert "hooks = ${build:product}-only\n" in show_config(cfg)


def test_glob_sections_get_merged_options(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[flatpak-remote-a]\napps_add = x\n[flatpak-remote-b]\n"
            "runtimes_add = r\n[kolibri-ch1]\ninclude_node_ids_add = n1\n"
            "[notaremote]\napps_add = q\n",
        }
    )
    cfg = load(config)
    assert cfg.get("flatpak-remote-a", "apps") == "x"
    assert cfg.get("flatpak-remote-b", "runtimes") == "r"
    assert cfg.get("flatpak-remote-b", "apps") == ""
    assert cfg.get("kolibri-ch1", "include_node_ids") == "n1"
    assert list(cfg.sections["notaremote"]) == ["apps_add"]


def test_interpolation_same_section_other_section_and_build_default(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[a]\nx = 1\ny = ${x}-${b:z}-${product}-$$\n[b]\nz = ${a:x}2\n",
        }
    )
    assert load(config).get("a", "y") == "1-12-eoscustom-$"


def test_references_resolve_after_all_files(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[a]\nname = early\nurl = http://${name}\n",
            "config/local.ini": "[a]\nname = late\n",
        }
    )
    cfg = load(config)
    assert cfg.get("a", "url") == "http://late"
    assert "url = http://${name}\n" in show_config(cfg)
    assert "url = http://late\n" in show_config(cfg, resolved=True)


def test_add_del_values_expanded_before_counting(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[base]\nset = a b\n[flatpak]\nlocales_add = ${base:set} c\n",
            "config/personality/es.ini": "[flatpak]\nlocales_del = ${build:personality} a\n",
            "config/local.ini": "[flatpak]\nlocales_add = es\n",
        }
    )
    assert load(config, {"personality": "es"}).get("flatpak", "locales") == "b\nc"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[a]\nx = ${nope}\n", r"\[a\] x: '\$\{nope\}' refers to a missing key"),
        ("[a]\nx = ${zz:y}\n", r"\[a\] x: '\$\{zz:y\}' refers to a missing key"),
        ("[a]\nx = ${y}\ny = ${x}\n", r"\[a\] x: interpolation cycle: a:x → a:y → a:x"),
        ("[a]\nx = $oops\n", r"\[a\] x: '\$' must be followed"),
    ],
)
def test_interpolation_errors_name_the_key(write_tree: TreeWriter, text: str, message: str) -> None:
    config = write_tree({"config/defaults.ini": text})
    with pytest.raises(UserError, match=message) as err:
        load(config).resolved()
    assert str(err.value).startswith(f"{config}/defaults.ini:2: ")


def test_missing_reference_inside_add_is_an_error(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[image]\n\nhooks_add = ${missing}\n"})
    with pytest.raises(UserError, match=r"defaults.ini:3: \[image\] hooks_add_defaults"):
        load(config)


def test_syntax_errors_name_file_and_line(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[a]\nx = 1\nx = 2\n"})
    with pytest.raises(UserError, match=r"defaults.ini:3: a:x: \[a\] x is set twice"):
        load(config)
    config = write_tree({"config/defaults.ini": "x = 1\n"})
    with pytest.raises(UserError, match=r"defaults.ini:1: a key comes before"):
        load(config)


def test_private_values_absent_from_show_config_present_in_env(write_tree: TreeWriter) -> None:
    from eib.compat.env import legacy_env

    config = write_tree(
        {
            "config/defaults.ini": "[image]\nsigning_keyid =\nhooks_add = a\n",
            "config/private.ini": "[image]\nsigning_keyid = SECRETKEY\nhooks_add = hidden\n"
            "[creds]\ntoken = t0k3n\n",
            "config/local.ini": "[pub]\nuses = ${image:signing_keyid}\n",
        }
    )
    cfg = load(config)
    out = show_config(cfg)
    assert "SECRETKEY" not in out and "t0k3n" not in out and "hidden" not in out
    assert "signing_keyid =" not in out and "[creds]" not in out
    assert "hooks = a\n" in out
    assert "uses = ${image:signing_keyid}\n" in out
    assert "uses = <redacted>\n" in show_config(cfg, resolved=True)
    env = legacy_env(cfg)
    assert env["EIB_IMAGE_SIGNING_KEYID"] == "SECRETKEY"
    assert env["EIB_CREDS_TOKEN"] == "t0k3n"
    assert env["EIB_IMAGE_HOOKS"] == "a\nhidden"


def test_show_config_layout_is_configparser_write(write_tree: TreeWriter) -> None:
    config = write_tree({"config/defaults.ini": "[z]\nmulti = one\n  two\n\n[a]\nEmpty =\n"})
    out = show_config(load(config))
    assert out.startswith("[build]\nproduct = eoscustom\n")
    assert out.endswith("[z]\nmulti = one\n\ttwo\n\n[a]\nempty = \n\n")


def test_merged_list_fed_by_a_private_value_is_redacted(write_tree: TreeWriter) -> None:
    config = write_tree(
        {
            "config/defaults.ini": "[image]\nhooks_add = a ${secret:name}\n",
            "config/private.ini": "[secret]\nname = b-hidden\n",
        }
    )
    cfg = load(config)
    assert cfg.get("image", "hooks") == "a\nb-hidden"
    out = show_config(cfg)
    assert "hooks = <redacted>\n" in out and "b-hidden" not in out
