"""A tree laid out like the legacy builder's plans through the real CLI.

Suffix-less schema keys, the pull URL from `dev_pull_url` (or
`prod_pull_url` with the production switch), trusted keys from `data/keys`
of the checkout and of the local settings dir, and a private value in the
local dir: `eib plan CONFIG_DIR -d LOCALDIR` needs nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eib.paths import RECIPES_DIR

from .conftest import EPOCH

KEY = RECIPES_DIR / "keys" / "eib-demo.asc"
DEV = "https://ostree.example.org/staging/dev/eos-amd64"
PROD = "https://ostree.example.org/ostree/eos-amd64"
DEFAULTS = """
[ostree]
dev_pull_url = https://ostree.example.org/staging/dev/eos-${build:arch}
prod_pull_url = https://ostree.example.org/ostree/eos-${build:arch}
deploy_url = https://ostree.example.org/ostree/eos-${build:arch}
remote = eos
ref = os/eos/${build:arch}/${build:branch}
ref_deploy = ${ref}
os = eos
repo = eos
enable_p2p_updates = false

[image]
hooks_add =
  50-hello
settings_add = ${build:srcdir}/data/settings/base.gschema.override

[flatpak]
enable = false
"""
SCHEMA = """
[image]
settings = paths
settings_locks = paths
compression_values = gz xz zstd

[ostree]
dev_pull_url_required = true
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    return make_tree(tmp_path)


def make_tree(tmp_path: Path) -> tuple[Path, Path]:
    """(config dir, local settings dir) of a legacy-shaped checkout."""
    src, local = tmp_path / "src", tmp_path / "local"
    write(src / "config" / "defaults.ini", DEFAULTS)
    write(src / "config" / "schema.ini", SCHEMA)
    write(src / "config" / "product" / "eos.ini", "[image]\ncompression = xz\n")
    write(src / "data" / "keys" / "eos-ostree.asc", KEY.read_text())
    write(src / "data" / "settings" / "base.gschema.override", "[org.gnome.desktop]\n")
    write(src / "hooks" / "image" / "50-hello", "#!/bin/sh\necho hello\n")
    write(local / "data" / "keys" / "site.asc", KEY.read_text())
    write(local / "config" / "private.ini", "[site]\ntoken = s3cr3t-token\n")
    return src / "config", local


def eib(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    return subprocess.run(
        [sys.executable, "-m", "eib.cli", *args], capture_output=True, text=True, env=env,
        timeout=120,
    )


def plan_json(config: Path, local: Path, *extra: str) -> dict:
    proc = eib("plan", str(config), "-d", str(local), "-p", "eos", "-a", "amd64", "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "s3cr3t" not in proc.stdout
    return json.loads(proc.stdout)


def test_plans_with_the_dev_pull_url_and_the_trusted_keys(tree: tuple[Path, Path]) -> None:
    config, local = tree
    plan = plan_json(config, local)
    ostree = plan["ostree"]
    assert ostree["url"] == DEV
    assert ostree["prod_url"] == PROD
    assert ostree["deploy_url"] == PROD
    assert (ostree["ref"], ostree["ref_deploy"]) == ("os/eos/amd64/master",) * 2
    assert (ostree["remote"], ostree["os"], ostree["p2p"]) == ("eos", "eos", False)
    # Both data/keys dirs, by content: the plan builds where the tree is not.
    assert ostree["gpg_keys"] == [KEY.read_text(), KEY.read_text()]
    assert plan["build"]["use_production_ostree"] is False
    assert plan["image"]["compression"] == "xz"


@pytest.mark.parametrize(
    "switch",
    [
        ["--use-production-ostree"],
        ["--use-production"],
        ["--set", "build.use_production_ostree=true"],
    ],
)
def test_production_switch_pulls_from_prod_pull_url(
    tree: tuple[Path, Path], switch: list[str]
) -> None:
    config, local = tree
    plan = plan_json(config, local, *switch)
    assert plan["ostree"]["url"] == PROD
    assert plan["build"]["use_production_ostree"] is True
    # The image still tracks deploy_url: the switch changes the pull only.
    assert plan["ostree"]["deploy_url"] == PROD


def test_human_plan_and_validate_show_the_pull(tree: tuple[Path, Path]) -> None:
    config, local = tree
    proc = eib("plan", str(config), "--localdir", str(local), "-p", "eos", "-a", "amd64")
    assert proc.returncode == 0, proc.stderr
    assert f"pull os/eos/amd64/master from {DEV}" in proc.stdout
    proc = eib("validate", str(config), "-d", str(local), "-p", "eos", "-a", "amd64",
               "--use-production-ostree")
    assert proc.returncode == 0, proc.stderr
    # One warning per suffix-less schema key; no error.
    assert proc.stderr.count("ignored") == 2
    assert "[image] settings:" in proc.stderr


def test_a_private_prod_url_stays_a_secret(tree: tuple[Path, Path]) -> None:
    config, local = tree
    write(local / "config" / "private.ini",
          "[ostree]\nprod_pull_url = https://builder:s3cr3t@ostree.example.org/prod\n")
    plan = plan_json(config, local, "--use-production")
    assert plan["ostree"]["url"] == "<secret:ostree.prod_pull_url>"


def test_production_without_a_prod_url_is_one_line_exit_2(tree: tuple[Path, Path]) -> None:
    config, local = tree
    text = (config / "defaults.ini").read_text()
    (config / "defaults.ini").write_text(text.replace("prod_pull_url", "# prod_pull_url"))
    proc = eib("plan", str(config), "-d", str(local), "-p", "eos", "-a", "amd64",
               "--use-production-ostree")
    assert proc.returncode == 2
    assert "ostree.prod_url is not set" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_key_dirs_the_pull_is_refused(tree: tuple[Path, Path]) -> None:
    config, local = tree
    for key in (config.parent / "data" / "keys" / "eos-ostree.asc", local / "data/keys/site.asc"):
        key.unlink()
    proc = eib("plan", str(config), "-d", str(local), "-p", "eos", "-a", "amd64")
    assert proc.returncode == 2
    assert "no gpg_keys" in proc.stderr


def test_upload_settings_become_the_legacy_publish_targets(tree: tuple[Path, Path]) -> None:
    """`[publish] s3_bucket` and `[image] upload_api_host` are where the legacy
    `45-publish-s3` and `50-publish` hooks uploaded; eib publishes there itself
    (`/etc/eos-image-builder/aws-credentials` and `ssh-key.pem` when they exist)."""
    config, local = tree
    write(local / "config" / "product" / "eos.ini", """
        [publish]
        s3_bucket = eos-images
        s3_region = eu-west-1

        [image]
        upload_api_host = images.example.org
    """)
    plan = plan_json(config, local)
    s3, rsync = plan["publish"]["targets"]
    assert (s3["kind"], s3["bucket"], s3["region"]) == ("s3", "eos-images", "eu-west-1")
    # The legacy defaults of `[image] user` and `path`.
    assert (rsync["kind"], rsync["host"], rsync["user"], rsync["path"]) == (
        "rsync", "images.example.org", "uploader", "/srv/images/www")
    # Hooks still see the legacy options.
    assert plan["env"]["EIB_PUBLISH_S3_BUCKET"] == "eos-images"
    assert plan["env"]["EIB_IMAGE_UPLOAD_API_HOST"] == "images.example.org"


def test_the_rsync_target_is_the_legacy_destdir(tree: tuple[Path, Path]) -> None:
    """`50-publish` rsynced into `[image] destdir`, `${path}/${publish:path}` unless set."""
    config, local = tree
    eos = local / "config" / "product" / "eos.ini"
    head = """
        [publish]
        path = nightly/${build:product}-${build:arch}/${build:branch}

        [image]
        upload_api_host = images.example.org
        path = /srv/images/www
    """.rstrip(" ")
    for destdir, dir_above in (("${path}/${publish:path}", "/srv/images/www"),
                               ("/srv/other/${publish:path}/", "/srv/other")):
        write(eos, head + f"        destdir = {destdir}\n")
        plan = plan_json(config, local)
        assert plan["publish"]["path"] == "nightly/eos-amd64/master"
        assert plan["publish"]["targets"][0]["path"] == dir_above
    write(eos, head + "        destdir = /srv/flat\n")
    proc = eib("plan", str(config), "-d", str(local), "-p", "eos", "-a", "amd64")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith(
        f"eib: error: {eos}:7: [image] destdir: '/srv/flat' does not end with the build's "
        "[publish] path 'nightly/eos-amd64/master'"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_eib_hooksdir_replaces_the_checkouts_hooks(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    """The legacy `run_hooks` looked in `${EIB_HOOKSDIR:-$EIB_SRCDIR/hooks}`."""
    config, local = tree
    other = tmp_path / "other-hooks"
    write(other / "image" / "50-hello", "echo from EIB_HOOKSDIR\n")
    env_before = os.environ.get("EIB_HOOKSDIR")
    os.environ["EIB_HOOKSDIR"] = str(other)
    try:
        plan = plan_json(config, local)
    finally:
        if env_before is None:
            del os.environ["EIB_HOOKSDIR"]
        else:
            os.environ["EIB_HOOKSDIR"] = env_before
    hook = next(h for h in plan["hooks"] if h["name"] == "50-hello")
    assert hook["content"] == "echo from EIB_HOOKSDIR\n"
    assert plan_json(config, local)["hooks"][0]["content"] == "#!/bin/sh\necho hello\n"


def test_hooks_see_a_remotes_repo_file_as_the_tree_wrote_it(tree: tuple[Path, Path]) -> None:
    """eib folds the `.flatpakrepo` into the plan's remote; a checkout's own Flatpak
    library reads the file itself (its GPGKey is the one key it takes)."""
    config, local = tree
    repo_file = local / "apps.flatpakrepo"
    key = base64.b64encode(KEY.read_bytes()).decode()  # any base64 passes the plan
    repo_file.write_text(f"[Flatpak Repo]\nUrl=https://apps.example.org/repo\nGPGKey={key}\n")
    write(local / "config" / "product" / "eos.ini", f"""
        [flatpak]
        enable = true

        [flatpak-remote-apps]
        repo_file = {repo_file}
        apps_add = org.example.App
    """)
    plan = plan_json(config, local)
    remote = plan["flatpak"]["remotes"]["apps"]
    assert (remote["url"], remote["repo_file"], remote["gpg_key"]) == (
        "https://apps.example.org/repo", "", key)
    assert plan["config"]["flatpak-remote-apps"]["repo_file"] == str(repo_file)
    assert plan["env"]["EIB_FLATPAK_REMOTE_APPS_REPO_FILE"] == str(repo_file)
    assert "prio" not in plan["config"]["flatpak-remote-apps"]  # unset, as in the tree
