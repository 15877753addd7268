"""The plan CLI as a user runs it: tree, JSON, matrix, diff, schema, version."""

from __future__ import annotations

import json
from pathlib import Path

from eib.paths import RECIPES_DIR, SOURCE_DIR

from .conftest import run_eib

EOS = RECIPES_DIR / "eos" / "eos.yaml"


def test_demo_plan_tree_shows_variant_stages_and_outputs() -> None:
    proc = run_eib("plan", RECIPES_DIR / "demo.yaml")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "eib-demo-master-amd64-amd64.251128-094000.base" in out
    for text in (
        "variant",
        "ostree",
        "stages",
        "deploy",
        "org.eib.Hello",
        "outputs",
        ".img.zst",
        "sha256:",
    ):
        assert text in out


def test_plan_json_is_byte_identical_across_runs() -> None:
    args = ("plan", EOS, "--personality", "pt_BR", "--arch", "arm64", "--json")
    first, second = run_eib(*args), run_eib(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    plan = json.loads(first.stdout)
    assert plan["digest"].startswith("sha256:")
    assert plan["build"]["personality"] == "pt_BR" and plan["build"]["arch"] == "arm64"
    assert plan["image"]["partition_table"] == "dos"
    assert plan["flatpak"]["locales"] == ["en", "pt"]
    assert plan["flatpak"]["remotes"]["eos-apps"]["apps"] == [
        "com.endlessm.welcome",
        "com.endlessm.encyclopedia.pt",
    ]
    assert "org.libreoffice.LibreOffice" not in plan["flatpak"]["remotes"]["flathub"]["apps"]
    assert [h["name"] for h in plan["hooks"] if h["group"] == "content"] == [
        "10-fetch-site-content",
        "20-br-content",
    ]


def test_digest_changes_with_the_input() -> None:
    a = json.loads(run_eib("plan", EOS, "--json").stdout)
    b = json.loads(run_eib("plan", EOS, "--json", "--set", "image.hostname=other").stdout)
    assert a["digest"] != b["digest"]


def test_explain_cli(tmp_path: Path) -> None:
    proc = run_eib("plan", EOS, "-P", "es", "--explain", "flatpak.remotes.eos-apps.apps")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        "flatpak.remotes.eos-apps.apps = [com.endlessm.welcome, com.endlessm.encyclopedia.es]"
    )
    assert any(
        line.startswith("  add [com.endlessm.encyclopedia.en, com.endlessm.welcome]")
        and "base.yaml:" in line
        for line in lines
    )
    assert any(
        "del [com.endlessm.encyclopedia.en]" in line and "personalities.yaml:" in line
        for line in lines
    )
    js = json.loads(
        run_eib("plan", EOS, "-P", "es", "--explain", "flatpak.locales", "--json").stdout
    )
    assert js["value"] == ["en", "es"]
    assert [e["action"] for e in js["history"]] == ["add", "add"]


def test_matrix_compiles_the_cross_product() -> None:
    proc = run_eib(
        "plan",
        EOS,
        "--matrix",
        "product=eos,eosx",
        "--matrix",
        "personality=base,en,pt_BR",
        "--matrix",
        "arch=amd64,arm64",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 12
    assert lines[0].startswith("eos-master-amd64-amd64.251128-094000.base  sha256:")
    assert lines[-1].startswith("eosx-master-arm64-arm64.251128-094000.pt_BR  sha256:")
    assert len({line.split()[1] for line in lines}) == 12  # every digest differs
    js = json.loads(run_eib("plan", EOS, "--matrix", "branch=master,eos6.0", "--json").stdout)
    assert [p["build"]["branch"] for p in js] == ["master", "eos6.0"]
    assert js[1]["ostree"]["url"] == "https://ostree.example.org/ostree/eos-amd64"


def test_diff_against_a_saved_plan(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(run_eib("plan", EOS, "--json").stdout)
    same = run_eib("plan", EOS, "--diff", saved)
    assert same.stdout == "plans are identical\n"
    changed = run_eib("plan", EOS, "--product", "eosx", "--diff", saved)
    assert changed.returncode == 0
    assert '~ image.compression: "xz" → "zstd"' in changed.stdout
    assert '~ build.product: "eos" → "eosx"' in changed.stdout


def test_schema_command_matches_committed_schema() -> None:
    proc = run_eib("schema")
    assert proc.returncode == 0
    committed = (SOURCE_DIR / "schema" / "recipe.schema.json").read_text()
    assert proc.stdout == committed, "schema/recipe.schema.json is stale: run eib schema > it"
    schema = json.loads(proc.stdout)
    assert "image" in schema["properties"]
    locales = schema["$defs"]["Flatpak"]["properties"]["locales"]
    assert {"type": "array", "items": {"type": "string"}} in [
        {k: v for k, v in alt.items() if k in ("type", "items")} for alt in locales["anyOf"]
    ]


def test_version_and_help() -> None:
    assert run_eib("--version").stdout.startswith("eib 0.")
    help_text = run_eib("plan", "--help").stdout
    for opt in ("--product", "--personality", "--set", "--json", "--explain", "--diff", "--matrix"):
        assert opt in help_text


def test_recipe_reference_is_current() -> None:
    from eib.compile.docgen import recipe_reference

    committed = (SOURCE_DIR / "docs" / "recipe-reference.md").read_text()
    assert committed == recipe_reference(), (
        "run: python -m eib.compile.docgen > docs/recipe-reference.md"
    )
    assert "| `compression` | 'gz' \\| 'xz' \\| 'zstd' | `gz` |" in committed
