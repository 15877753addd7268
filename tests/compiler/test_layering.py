"""Layering: extends, overlays with when:, list add/del, interpolation, origins."""

from __future__ import annotations

from pathlib import Path

from eib.compile.compiler import compile_recipe
from eib.compile.explain import explain_key


def test_extends_then_body_then_overlays_in_order(write, hooks: Path) -> None:
    write(
        "base.yaml",
        """
        image: {hostname: base-host, timezone: UTC}
        overlays:
          - when: {arch: arm64}
            image: {hostname: base-arm}
    """,
    )
    top = write(
        "top.yaml",
        """
        extends: [base.yaml]
        variant: {product: demo}
        image: {timezone: Europe/Lisbon}
        overlays:
          - when: {arch: arm64}
            image: {timezone: Asia/Tokyo}
    """,
    )
    amd = compile_recipe(top, {"arch": "amd64"}).plan
    arm = compile_recipe(top, {"arch": "arm64"}).plan
    assert (amd.image.hostname, amd.image.timezone) == ("base-host", "Europe/Lisbon")
    assert (arm.image.hostname, arm.image.timezone) == ("base-arm", "Asia/Tokyo")
    assert arm.build.product == "demo" and arm.build.platform == "arm64"


def test_list_add_del_counting_and_first_seen_order(write, hooks: Path) -> None:
    write("a.yaml", "flatpak: {locales: {add: [en, es, fr]}}\n")
    write("b.yaml", "extends: [a.yaml]\nflatpak: {locales: {add: [pt, es], del: [en, fr]}}\n")
    top = write("c.yaml", "extends: [b.yaml]\nflatpak: {locales: {del: [es]}}\n")
    # en: +1-1=0, es: +2-1=1, fr: +1-1=0, pt: +1 → [es, pt] in first-added order
    assert compile_recipe(top, {"arch": "amd64"}).plan.flatpak.locales == ["es", "pt"]


def test_plain_list_anywhere_wins_over_every_add_and_del(write, hooks: Path) -> None:
    write("a.yaml", "flatpak: {locales: [de]}\n")
    top = write("b.yaml", "extends: [a.yaml]\nflatpak: {locales: {add: [en]}}\n")
    assert compile_recipe(top, {"arch": "amd64"}).plan.flatpak.locales == ["de"]


def test_personality_condition_matches_by_prefix(write, hooks: Path) -> None:
    top = write(
        "r.yaml",
        """
        overlays:
          - when: {personality: pt}
            image: {language: pt_BR.utf8}
          - when: {personality: pt_BR}
            image: {xkb_layout: br}
    """,
    )

    def image(p: str):
        return compile_recipe(top, {"arch": "amd64", "personality": p}).plan.image

    assert image("pt").language == "pt_BR.utf8" and image("pt").xkb_layout == ""
    assert image("pt_BR").xkb_layout == "br" and image("pt_BR").language == "pt_BR.utf8"
    assert image("pt_BR_x").xkb_layout == "br"
    assert image("ptx").language == ""  # a prefix is a whole '_'-separated part


def test_when_list_is_any_of_and_series_is_derived(write, hooks: Path) -> None:
    top = write(
        "r.yaml",
        """
        overlays:
          - when: {branch: [eos6.0, eos6.1]}
            image: {hostname: stable}
          - when: {series: eos6}
            image: {timezone: UTC}
    """,
    )
    plan = compile_recipe(top, {"arch": "amd64", "branch": "eos6.1"}).plan
    assert plan.build.series == "eos6"
    assert (plan.image.hostname, plan.image.timezone) == ("stable", "UTC")
    assert compile_recipe(top, {"arch": "amd64"}).plan.image.hostname == ""


def test_interpolation_after_merge_and_inside_add(write, hooks: Path) -> None:
    write(
        "base.yaml",
        """
        ostree:
          os: ${build:product}
          ref: os/${os}/${build:platform}/${build:branch}
        flatpak:
          remotes:
            main:
              url: https://example.org/${build:series}
              gpg_verify: false
              apps: {add: ["org.${build:product}.App"]}
    """,
    )
    top = write("top.yaml", "extends: [base.yaml]\nvariant: {product: eosx}\nostree: {os: late}\n")
    plan = compile_recipe(
        top, {"arch": "arm64", "platform": "pinebookpro", "branch": "eos6.0"}
    ).plan
    assert plan.ostree.ref == "os/late/pinebookpro/eos6.0"  # the later layer's os
    assert plan.flatpak.remotes["main"].url == "https://example.org/eos6"
    assert plan.flatpak.remotes["main"].apps == ["org.eosx.App"]
    assert plan.flatpak.arch == "aarch64"


def test_set_overrides_with_typed_values(write, hooks: Path) -> None:
    top = write("r.yaml", "image: {iso: false}\n")
    plan = compile_recipe(
        top, {"arch": "amd64"}, ["image.iso=true", "flatpak.locales=[en, pt]"]
    ).plan
    assert plan.image.iso is True
    assert plan.flatpak.locales == ["en", "pt"]


def test_free_form_sections_reach_the_hook_environment(write, hooks: Path) -> None:
    top = write(
        "r.yaml",
        """
        kolibri:
          app_version: "0.16"
          install_channels: {add: [abc, def]}
          enable: True
        image: {hostname: host1}
        hooks: {image: {add: [10-a]}}
        flatpak: {remotes: {flathub: {url: "https://x", gpg_verify: false, apps: [org.A]}}}
    """,
    )
    env = compile_recipe(top, {"arch": "amd64", "product": "eos"}).plan.env
    assert env["EIB_KOLIBRI_APP_VERSION"] == "0.16"
    assert env["EIB_KOLIBRI_INSTALL_CHANNELS"] == "abc\ndef"
    assert env["EIB_KOLIBRI_ENABLE"] == "true"
    assert env["EIB_IMAGE_HOSTNAME"] == "host1"
    assert env["EIB_IMAGE_HOOKS"] == "10-a"
    assert env["EIB_PRODUCT"] == "eos" and env["EIB_SERIES"] == "master"
    assert env["EIB_FLATPAK_REMOTE_FLATHUB_APPS"] == "org.A"


def test_hooks_resolved_sorted_and_pinned(write, hooks: Path) -> None:
    top = write("r.yaml", "hooks: {image: {add: [30-c.chroot, 10-a, 20-b]}, content: [10-get]}\n")
    plan = compile_recipe(top, {"arch": "amd64"}).plan
    image = plan.hooks_of("image")
    assert [h.name for h in image] == ["10-a", "20-b", "30-c.chroot"]
    assert [h.chroot for h in image] == [False, False, True]
    assert [h.executable for h in image] == [False, True, False]
    assert image[0].found_in == "recipe"
    assert image[0].data() == (hooks / "image" / "10-a").read_bytes()
    import hashlib

    assert image[0].sha256 == hashlib.sha256(b"echo 10-a\n").hexdigest()
    steps = [s.name for s in plan.stage("image").steps]  # type: ignore[union-attr]
    assert steps[:2] == ["deploy", "hook 10-get"]  # content hooks see the deployment


def test_explain_shows_every_layer_of_an_add_del_list(write, hooks: Path) -> None:
    a = write("a.yaml", "flatpak:\n  locales:\n    add: [en, es]\n")
    top = write(
        "b.yaml",
        """
        extends: [a.yaml]
        overlays:
          - when: {personality: pt}
            flatpak:
              locales: {add: [pt], del: [es]}
    """,
    )
    result = compile_recipe(top, {"arch": "amd64", "personality": "pt_BR"})
    text = explain_key(result, "flatpak.locales")
    lines = text.splitlines()
    assert lines[0] == "flatpak.locales = [en, pt]"
    assert f"add [en, es]  at {a}:3" in text
    assert f"add [pt]  at {top}:5" in text
    assert f"del [es]  at {top}:5" in text
    assert "when personality=pt" in text


def test_secrets_are_redacted_from_plan_and_env(write, hooks: Path) -> None:
    top = write(
        "r.yaml",
        """
        secrets:
          token: {value: canary-7f3a91}
          aws: {file: creds/aws}
          ssh: {env: DEPLOY_KEY}
    """,
    )
    plan = compile_recipe(top, {"arch": "amd64"}).plan
    text = plan.to_json()
    assert "canary-7f3a91" not in text
    refs = {s.name: (s.source, s.where) for s in plan.secrets}
    assert refs["token"] == ("file-key", str(top.resolve()))
    assert next(s.key for s in plan.secrets if s.name == "token") == ["secrets", "token", "value"]
    assert refs["aws"] == ("file", str(top.parent / "creds" / "aws"))
    assert refs["ssh"] == ("env", "DEPLOY_KEY")
    assert plan.env["EIB_SECRETS_TOKEN"] == "<secret:token>"
