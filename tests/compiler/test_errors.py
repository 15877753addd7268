"""Every kind of user mistake: one line naming file, line and key; exit 2; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_eib


def check_error(recipe: Path, *expected: str, args: tuple[str, ...] = ()) -> str:
    proc = run_eib("plan", recipe, "--arch", "amd64", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_malformed_yaml(write) -> None:
    r = write("r.yaml", "image:\n  hostname: [a, b\n")
    check_error(r, f"{r}:3:", "malformed YAML")


def test_wrong_type_is_not_coerced(write) -> None:
    r = write("r.yaml", "image:\n  iso: maybe\n")
    check_error(r, f"{r}:2:", "image.iso:", "expected true or false", "'maybe'")


def test_wrong_type_in_an_overlay_names_the_overlay_line(write) -> None:
    r = write("r.yaml", "overlays:\n  - when: {arch: amd64}\n    image:\n      max_size: big\n")
    check_error(r, f"{r}:4:", "image.max_size:", "expected an integer")


def test_unknown_key_with_did_you_mean(write) -> None:
    r = write("r.yaml", "image:\n  hostname: x\n  compresion: xz\n")
    check_error(r, f"{r}:3:", "image.compresion:", "unknown key", "did you mean 'compression'")


def test_unknown_key_in_a_remote(write) -> None:
    r = write("r.yaml", "flatpak:\n  remotes:\n    fh:\n      urll: x\n")
    check_error(r, f"{r}:4:", "flatpak.remotes.fh.urll", "did you mean 'url'")


def test_typo_in_a_section_name(write) -> None:
    r = write("r.yaml", "imgae:\n  hostname: x\n")
    check_error(r, f"{r}:1:", "unknown section 'imgae'", "did you mean 'image'")


def test_bad_literal_value(write) -> None:
    r = write("r.yaml", "image:\n  compression: lzma\n")
    check_error(r, f"{r}:2:", "image.compression:", "'gz', 'xz' or 'zstd'")


def test_bad_when_attribute(write) -> None:
    r = write("r.yaml", "overlays:\n  - when: {personalty: pt}\n    image: {hostname: x}\n")
    check_error(
        r, f"{r}:2:", "unknown variant attribute 'personalty'", "did you mean 'personality'"
    )


def test_when_without_condition(write) -> None:
    r = write("r.yaml", "overlays:\n  - image: {hostname: x}\n")
    check_error(r, f"{r}:2:", "overlays[0]", "when")


def test_missing_extends_file(write) -> None:
    r = write("r.yaml", "eib: 1\nextends: [base.yaml, nothere.yaml]\n")
    write("base.yaml", "image: {}\n")
    check_error(r, f"{r}:2:", "extends:", "nothere.yaml")


def test_extends_cycle(write) -> None:
    a = write("a.yaml", "extends: [b.yaml]\n")
    write("b.yaml", "extends: [a.yaml]\n")
    check_error(a, "extends cycle", "a.yaml → ")


def test_interpolation_cycle(write) -> None:
    r = write("r.yaml", "image:\n  hostname: ${timezone}\n  timezone: ${hostname}\n")
    check_error(r, "interpolation cycle", "image.hostname", "image.timezone")


def test_missing_reference(write) -> None:
    r = write("r.yaml", "ostree:\n  ref: os/${build:prodct}/x\n")
    check_error(r, f"{r}:2:", "ostree.ref:", "${build:prodct}", "not set")


def test_bad_dollar_syntax(write) -> None:
    r = write("r.yaml", "ostree:\n  ref: os/$product\n")
    check_error(r, f"{r}:2:", "ostree.ref:", "'$' must be followed")


def test_add_given_a_string(write) -> None:
    r = write("r.yaml", "flatpak:\n  locales:\n    add: en\n")
    check_error(r, f"{r}:3:", "flatpak.locales:", "'add' takes a list", "add: [en]")


def test_list_given_a_scalar(write) -> None:
    r = write("r.yaml", "flatpak:\n  locales: en\n")
    check_error(r, f"{r}:2:", "flatpak.locales:", "expected a list or {add")


@pytest.mark.parametrize("name", ["../evil", "sub/hook", ".."])
def test_hook_name_with_slash_or_dotdot(write, name: str) -> None:
    r = write("r.yaml", f"hooks:\n  image:\n    add: [ok-hook, '{name}']\n")
    check_error(r, f"{r}:3:", "hooks.image:", f"invalid hook name '{name}'")


def test_missing_hook_names_where_it_was_added(write) -> None:
    r = write("r.yaml", "hooks:\n  image:\n    add: [99-nowhere]\n")
    check_error(r, f"{r}:3:", "hooks.image:", "hook '99-nowhere' not found")


def test_duplicate_key(write) -> None:
    r = write("r.yaml", "image:\n  hostname: a\n  hostname: b\n")
    check_error(r, f"{r}:3:", "duplicate key", "image.hostname")


def test_recipe_not_found(tmp_path: Path) -> None:
    check_error(tmp_path / "missing.yaml", "missing.yaml", "not found")


def test_unsupported_arch_on_the_command_line(write) -> None:
    r = write("r.yaml", "image: {}\n")
    proc = run_eib("plan", r, "--arch", "amd46")
    assert proc.returncode == 2 and "unsupported arch 'amd46'" in proc.stderr
    assert "did you mean 'amd64'" in proc.stderr


def test_bad_set_option(write) -> None:
    r = write("r.yaml", "image: {}\n")
    check_error(r, "--set image", "expected --set section.key=value", args=("--set", "image"))


def test_validate_reports_ok_or_the_error(write) -> None:
    good = write("good.yaml", "image: {hostname: x}\n")
    bad = write("bad.yaml", "image: {iso: 3}\n")
    ok = run_eib("validate", good, "--arch", "amd64")
    assert ok.returncode == 0 and ok.stdout.startswith("ok: eoscustom-master-amd64-amd64.")
    err = run_eib("validate", bad, "--arch", "amd64")
    assert err.returncode == 2 and f"{bad}:1: image.iso: expected true or false" in err.stderr


@pytest.mark.parametrize(
    ("target", "key"),
    [
        ("{kind: s3, region: eu-west-1}", "bucket"),
        ("{kind: rsync, path: /srv}", "host"),
        ("{kind: local}", "path"),
    ],
)
def test_publish_target_missing_its_required_key(write, target: str, key: str) -> None:
    r = write("r.yaml", f"image: {{hostname: x}}\npublish:\n  targets:\n    - {target}\n")
    line = check_error(r, f"{r}:3:", f"publish.targets[0].{key}", f"missing required key '{key}'")
    proc = run_eib("validate", r, "--arch", "amd64")
    assert proc.returncode == 2 and proc.stderr.strip() == line


@pytest.mark.parametrize(
    ("target", "key", "text"),
    [
        ("{kind: ftp, path: /x}", "publish.targets[0]", "'s3', 'rsync', 'local'"),
        ("{kind: local, path: relative}", "publish.targets[0].path", "should match"),
        ("{kind: rsync, host: -oProxyCommand=x}", "publish.targets[0].host", "'-'"),
        ("{kind: rsync, host: h, user: -l}", "publish.targets[0].user", "'-'"),
        ("{kind: s3, bucket: b, unknown: 1}", "publish.targets[0].unknown", "unknown key"),
    ],
)
def test_publish_target_bad_values(write, target: str, key: str, text: str) -> None:
    r = write("r.yaml", f"publish:\n  targets:\n    - {target}\n")
    check_error(r, f"{r}:2:", key, text)


@pytest.mark.parametrize("path", ["''", "'.'", "/", "a/../b", "nightly/.."])
def test_publish_path_must_name_a_dir_below_the_target(write, path: str) -> None:
    r = write("r.yaml", f"publish:\n  path: {path}\n")
    check_error(r, f"{r}:2:", "publish.path", "below the target")
