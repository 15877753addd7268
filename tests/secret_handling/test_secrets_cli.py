"""Secret values stay out of plans, errors and converted public recipes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EIB = [sys.executable, "-m", "eib.cli"]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-tree"
CANARY = "CANARY-9e0f2c71"


def eib(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    return subprocess.run([*EIB, *map(str, args)], capture_output=True, text=True,
                          env={**base, "SOURCE_DATE_EPOCH": "1700000000", **(env or {})},
                          timeout=120, check=False)


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """The fixture tree plus private values: a URL password, a token, and a public
    option interpolating the token."""
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURE, tree)
    with open(tree / "config" / "private.ini", "a") as f:
        f.write(f"\n[ostree]\nurl = https://builder:{CANARY}@ostree.example.org/repo\n"
                f"\n[custom]\ntoken = {CANARY}-token\n")
    with open(tree / "config" / "local.ini", "a") as f:
        f.write("\n[custom]\nauth = Bearer ${custom:token}\n")
    return tree


def test_legacy_plan_tree_and_json_show_no_private_value(legacy: Path) -> None:
    shown = eib("plan", legacy / "config")
    as_json = eib("plan", legacy / "config", "--json")
    assert shown.returncode == 0 and as_json.returncode == 0, shown.stderr + as_json.stderr
    for out in (shown.stdout, as_json.stdout):
        assert CANARY not in out
        assert "0123456789ABCDEF" not in out  # [image] signing_keyid of private.ini
    plan = json.loads(as_json.stdout)
    assert plan["ostree"]["url"] == "<secret:ostree.url>"
    assert plan["env"]["EIB_CUSTOM_AUTH"] == "Bearer <secret:custom.token>"
    assert "pull os/" in shown.stdout and "from <secret:ostree.url>" in shown.stdout
    ref = next(s for s in plan["secrets"] if s["name"] == "ostree.url")
    assert ref["source"] == "file-key" and ref["key"] == ["ostree", "url"]
    assert ref["where"] == str((legacy / "config" / "private.ini").resolve())


def test_convert_writes_private_values_only_into_0600_files(legacy: Path) -> None:
    out = legacy  # converted recipes live in the legacy checkout (its hooks/)
    proc = eib("convert", legacy / "config", out)
    assert proc.returncode == 0, proc.stderr
    holding = []
    for path in sorted(out.glob("*.yaml")) + sorted((out / "layers").rglob("*.yaml")):
        if CANARY.encode() in path.read_bytes():
            holding.append(path.name)
            assert path.stat().st_mode & 0o077 == 0, path
    assert holding  # the values are somewhere: in the private layer
    assert CANARY not in (out / "recipe.yaml").read_text()
    converted = eib("plan", out / "recipe.yaml", "--json")
    assert converted.returncode == 0, converted.stderr
    assert CANARY not in converted.stdout


def recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text("eib: 1\n" + body)
    return path


@pytest.mark.parametrize("body", [
    f'secrets:\n  token: {{value: "pa${{{CANARY}"}}\n',  # bad interpolation syntax
    f'secrets:\n  token: "{CANARY}"\n',  # a scalar instead of a mapping
])
def test_errors_never_echo_a_secret_value(tmp_path: Path, body: str) -> None:
    proc = eib("plan", recipe(tmp_path, body))
    assert CANARY not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_inline_value_is_referenced_by_file_and_key(tmp_path: Path) -> None:
    path = recipe(tmp_path, f'overlays:\n  - when: {{arch: amd64}}\n'
                            f'    secrets:\n      token: {{value: "{CANARY}$x"}}\n')
    proc = eib("plan", path, "--json", "--arch", "amd64")
    assert proc.returncode == 0, proc.stderr
    assert CANARY not in proc.stdout
    ref = json.loads(proc.stdout)["secrets"][0]
    assert ref == {"name": "token", "source": "file-key", "where": str(path.resolve()),
                   "key": ["overlays", "0", "secrets", "token", "value"], "interpolate": {}}


def test_set_cannot_define_a_secret(tmp_path: Path) -> None:
    proc = eib("plan", recipe(tmp_path, ""), "--set", f"secrets.token.value={CANARY}")
    assert proc.returncode == 2
    assert CANARY not in proc.stdout + proc.stderr
    assert "--set cannot define secrets" in proc.stderr


def test_the_provider_needs_neither_the_recipe_loader_nor_the_legacy_reader() -> None:
    code = ("import sys, eib.secrets, eib.execute.runner\n"
            "bad = [m for m in sys.modules if m.startswith(('eib.load', 'eib.compat'))]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
