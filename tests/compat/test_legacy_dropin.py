"""A tree laid out like the legacy builder's checkout builds the demo OS unchanged.

The tree has what real legacy trees have: schema keys without a suffix,
`dev_pull_url`/`prod_pull_url`, trusted keys in `data/keys`, a Flatpak
remote from a `.flatpakrepo` file, its own hooks and Python `lib/`, the
legacy hook lists (`50-flatpak.chroot` among the image hooks, the publish
hooks `40-build-log` … `50-publish`), and a local settings dir holding a
private value, a hook of the site, and the switch of the pull URLs to the
demo server on loopback.  It is planned, validated and built as a user
would: `eib plan|validate|run CONFIG_DIR -d LOCALDIR`, and through the
drop-in launcher `compat/eos-image-builder`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eib.paths import RECIPES_DIR, SOURCE_DIR
from tests.loopback import demo_server, moto_server

from .conftest import EPOCH

EIB = [sys.executable, "-m", "eib.cli"]
LAUNCHER = SOURCE_DIR / "compat" / "eos-image-builder"
TEST_CACHE = Path(os.environ.get("EIB_TEST_CACHE", "/var/tmp/eib-test-cache"))
DEMO_DIR = TEST_CACHE / "run-cache" / "demo"
KEY = RECIPES_DIR / "keys" / "eib-demo.asc"
TOKEN = "s3cr3t-dropin-token-4417"
BUCKET = "dropin-images"
PROD = "https://origin.ostree.example.org/ostree/eib-demo-amd64"

DEFAULTS = """
[build]
datadir = ${srcdir}/data
helpersdir = ${srcdir}/helpers

[ostree]
dev_pull_url = https://origin.ostree.example.org/staging/dev/${build:product}-${build:arch}
prod_pull_url = https://origin.ostree.example.org/ostree/${build:product}-${build:arch}
deploy_url = https://ostree.example.org/ostree/${build:product}-${build:arch}
remote = ${build:product}
ref = os/${build:product}/${build:arch}/${build:branch}
ref_deploy = ${ref}
os = ${build:product}
repo = ${build:product}
enable_p2p_updates = false

[image]
compression = gz
partition_table = gpt
signing_keyid =
hooks_add =
  50-flatpak.chroot
  50-hostname
  50-language
  70-flatpak-appstream-catalog
  70-flatpak-manifest
  70-ostree-manifest
  75-installed-apps
settings_add = ${build:datadir}/settings/base.gschema.override

[content]
hooks_add =
  20-content-stamp
  30-content-root.chroot
  50-flatpak

[manifest]
hooks_add = 50-site-facts

[publish]
hooks_add =
  40-build-log
  42-sha256sums
  45-publish-s3
  50-publish
s3_bucket =
s3_region =

[flatpak]
enable = true
locales_add = en

[flatpak-remote-eib-demo]
repo_file = ${build:datadir}/eib-demo.flatpakrepo
deploy_url = https://updates.example.org/flatpak/demo
apps_add = org.eib.Hello org.eib.Clock
"""
SCHEMA = """
[image]
compression_values = gz xz
settings = paths
settings_locks = paths

[ostree]
dev_pull_url_required = true
prod_pull_url_required = true
"""
PRODUCT = """
[image]
hostname = eib-dropin
language = pt_BR.UTF-8
"""
# The tree's own hooks, in the legacy styles: sourced bash, an executable
# Python hook importing the legacy `eib` module and the tree's lib/.
CONTENT_STAMP = """
echo "deployed before content hooks: ${OSTREE_CURRENT_DEPLOYMENT}" \\
    > "$OSTREE_DEPLOYMENT/etc/content-stamp"
echo "lost when the output dir is recreated" > "$EIB_OUTDIR/content-junk"
"""
INSTALLED_APPS = """
FLATPAK_SYSTEM_DIR="$OSTREE_VAR/lib/flatpak" flatpak list --system --app \\
    --columns=application > "$(eib_outfile installed-apps.txt)"
"""
SITE_FACTS = """#!/usr/bin/python3
import json
import os

import eib
import sitelib

eib.setup_logging()
config = eib.get_config()
facts = {"site": {"hostname": config["image"]["hostname"],
                  "has_token": bool(config["site"]["token"]),
                  "tagline": sitelib.TAGLINE}}
with open(os.path.join(os.environ["EIB_MANIFESTDIR"], "site.json"), "w") as f:
    json.dump(facts, f)
"""
SITE_HOOK = """
printf '%s' "$EIB_SITE_TOKEN" | sha256sum | cut -d' ' -f1 \
    > "$OSTREE_DEPLOYMENT/etc/site-token.sha256"
"""


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    path.chmod(mode)


def flatpakrepo(url: str) -> str:
    binary = subprocess.run(["gpg", "--dearmor"], input=KEY.read_bytes(), capture_output=True,
                            check=True).stdout
    return (f"[Flatpak Repo]\nTitle=eib demo apps\nUrl={url}\nDefaultBranch=stable\n"
            f"GPGKey={base64.b64encode(binary).decode()}\n")


@dataclass(frozen=True)
class Tree:
    config: Path
    local: Path
    port: int
    s3: str

    def args(self) -> list[str]:
        return [str(self.config), "-d", str(self.local), "-p", "eib-demo", "-b", "master"]


def make_tree(top: Path, port: int, s3: str) -> Tree:
    src, local = top / "checkout", top / "site"
    write(src / "config" / "defaults.ini", DEFAULTS)
    write(src / "config" / "schema.ini", SCHEMA)
    write(src / "config" / "product" / "eib-demo.ini", PRODUCT)
    write(src / "data" / "keys" / "eib-demo.asc", KEY.read_text())
    write(src / "data" / "settings" / "base.gschema.override", "[org.gnome.desktop]\n")
    write(src / "data" / "eib-demo.flatpakrepo",
          flatpakrepo("https://updates.example.org/flatpak/demo"))
    write(src / "hooks" / "content" / "20-content-stamp", CONTENT_STAMP)
    write(src / "hooks" / "content" / "30-content-root.chroot",
          'echo "inside the deployment as /" > /etc/content-chroot\n')
    write(src / "hooks" / "image" / "75-installed-apps", INSTALLED_APPS)
    write(src / "hooks" / "manifest" / "50-site-facts", SITE_FACTS, 0o755)
    write(src / "lib" / "sitelib.py", "TAGLINE = 'built by the checkout lib'\n")
    # The site's settings: the demo server instead of the origin, an upload
    # bucket, a private token, a hook of its own and a key it also trusts.
    write(local / "config" / "defaults.ini", f"""
        [ostree]
        dev_pull_url = http://127.0.0.1:{port}/ostree

        [flatpak-remote-eib-demo]
        url = http://127.0.0.1:{port}/flatpak

        [image]
        hooks_add = 80-site

        [publish]
        s3_bucket = {BUCKET}
        s3_region = us-east-1
        s3_endpoint_url = {s3}
        """)
    write(local / "config" / "private.ini", f"[site]\ntoken = {TOKEN}\n")
    write(local / "data" / "keys" / "site.asc", KEY.read_text())
    write(local / "hooks" / "image" / "80-site", SITE_HOOK)
    return Tree(src / "config", local, port, s3)


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EIB_", "AWS_"))}
    base.update({"SOURCE_DATE_EPOCH": EPOCH, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", **env})
    return subprocess.run(argv, capture_output=True, text=True, env=base, timeout=900,
                          check=False)


@pytest.fixture(scope="module")
def demo_port() -> Iterator[int]:
    """The demo OS and apps (built once per machine), served on loopback."""
    with demo_server(DEMO_DIR) as port:
        yield port


def s3_client(url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as url:
        s3_client(url).create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, demo_port: int, s3: str) -> Tree:
    return make_tree(tmp_path_factory.mktemp("dropin"), demo_port, s3)


@dataclass(frozen=True)
class Built:
    proc: subprocess.CompletedProcess[str]
    work: Path
    out: Path

    def one(self, pattern: str) -> Path:
        found = sorted(self.out.glob(pattern))
        assert len(found) == 1, (pattern, sorted(p.name for p in self.out.iterdir()))
        return found[0]

    @property
    def deployment(self) -> Path:
        return next((self.work / "sysroot/ostree/deploy/eib-demo/deploy").glob("*.0"))


def remove(path: Path) -> None:
    subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def built(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    top = tmp_path_factory.mktemp("dropin-run")
    proc = run([*EIB, "run", *tree.args(), "--cache-dir", str(top / "cache"),
                "--work-dir", str(top / "work"), "--output-dir", str(top / "out"),
                "--progress", "plain"], EIB_DEMO_DIR=str(DEMO_DIR))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    yield Built(proc, top / "work", top / "out")
    remove(top)


def test_plan_and_validate_need_no_extra_settings(tree: Tree) -> None:
    proc = run([*EIB, "plan", *tree.args(), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert "settings" in proc.stderr  # the suffix-less schema keys: one warning
    plan = json.loads(proc.stdout)
    assert plan["ostree"]["url"] == f"http://127.0.0.1:{tree.port}/ostree"
    assert plan["ostree"]["prod_url"] == PROD
    assert plan["ostree"]["deploy_url"] == "https://ostree.example.org/ostree/eib-demo-amd64"
    assert len(plan["ostree"]["gpg_keys"]) == 2  # data/keys of the checkout and of the site
    assert plan["flatpak"]["remotes"]["eib-demo"]["url"] == f"http://127.0.0.1:{tree.port}/flatpak"
    assert plan["publish"]["targets"] == [
        {"kind": "s3", "bucket": BUCKET, "region": "us-east-1", "endpoint_url": tree.s3,
         "path": "", "credentials_secret": ""}]
    hooks = {(h["group"], h["name"]): h["found_in"] for h in plan["hooks"]}
    assert hooks[("image", "50-flatpak.chroot")] == "native"
    assert hooks[("publish", "45-publish-s3")] == "native"
    assert hooks[("image", "80-site")] == "localdir"
    assert hooks[("image", "75-installed-apps")] == "recipe"
    assert hooks[("image", "50-hostname")] == "builtin"
    assert TOKEN not in proc.stdout + proc.stderr
    image_steps = next(s["steps"] for s in plan["stages"] if s["name"] == "image")
    names = [s["name"] for s in image_steps]
    assert names.index("deploy") < names.index("hook 20-content-stamp")
    assert names.index("hook 50-flatpak.chroot") < names.index("hook 75-installed-apps")
    assert "install 2 refs" in image_steps[names.index("hook 50-flatpak.chroot")]["description"]

    production = run([*EIB, "plan", *tree.args(), "--use-production-ostree", "--json"])
    assert production.returncode == 0, production.stderr
    assert json.loads(production.stdout)["ostree"]["url"] == PROD

    valid = run([*EIB, "validate", *tree.args()])
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_run_builds_the_demo_os_with_the_trees_hooks(built: Built) -> None:
    out = built.out
    image = built.one("*.img.gz")
    outversion = image.name.removesuffix(".img.gz")
    assert outversion.startswith("eib-demo-master-amd64-amd64.")
    for suffix in (".img.gz.size", ".img.gz.sha256", ".img.sha256", ".ostree.txt",
                   ".config.ini", ".manifest.json", ".build.txt", ".installed-apps.txt"):
        assert (out / f"{outversion}{suffix}").is_file(), suffix
    # Content hooks run after the deploy; what they left in the output dir is gone.
    assert (built.deployment / "etc/content-stamp").read_text().startswith(
        f"deployed before content hooks: {built.deployment.name}")
    assert not (out / "content-junk").exists()
    assert (built.deployment / "etc/content-chroot").read_text() == "inside the deployment as /\n"
    # The apps were installed at 50-flatpak.chroot's place: 75-installed-apps saw them.
    apps = (out / f"{outversion}.installed-apps.txt").read_text().split()
    assert sorted(apps) == ["org.eib.Clock", "org.eib.Hello"]
    # Built-in hooks under legacy names, the site's hook with the private value.
    assert (built.deployment / "etc/hostname").read_text().strip() == "eib-dropin"
    import hashlib

    assert (built.deployment / "etc/site-token.sha256").read_text().strip() == (
        hashlib.sha256(TOKEN.encode()).hexdigest())
    manifest = json.loads((out / f"{outversion}.manifest.json").read_text())
    assert manifest["site"] == {"hostname": "eib-dropin", "has_token": True,
                                "tagline": "built by the checkout lib"}
    assert manifest["ostree"]["ref"] == "os/eib-demo/amd64/master"
    # The legacy 70-flatpak-manifest shape, from the built-in hook after the install.
    assert sorted(manifest["flatpak"]["apps"]) == [
        "org.eib.Clock/x86_64/stable", "org.eib.Hello/x86_64/stable"]
    assert all(app["remote"] == "eib-demo" for app in manifest["flatpak"]["apps"].values())
    assert (out / f"{outversion}.appstream.xml.gz").is_file()
    # The log shows the legacy order: eib's install at the hook's place.
    log = (out / f"{outversion}.build.txt").read_text()
    assert log.index("50-flatpak.chroot: eib's own step") < log.index("75-installed-apps")


def test_publish_hooks_run_in_the_legacy_order(built: Built, tree: Tree) -> None:
    """40-build-log and 42-sha256sums come before 45-publish-s3: their files are uploaded."""
    client = s3_client(tree.s3)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    names = {k.rsplit("/", 1)[-1] for k in keys}
    outversion = built.one("*.img.gz").name.removesuffix(".img.gz")
    assert {f"{outversion}.img.gz", f"{outversion}.build.txt", "SHA256SUMS",
            f"{outversion}.installed-apps.txt"} <= names
    sums = next(k for k in keys if k.endswith("/SHA256SUMS"))
    listed = client.get_object(Bucket=BUCKET, Key=sums)["Body"].read().decode()
    assert f"  {outversion}.img.gz" in listed
    assert not any(k.endswith(".inprogress") for k in keys)


def test_private_value_never_reaches_outputs_or_uploads(built: Built, tree: Tree) -> None:
    for path in built.out.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path.name
    assert TOKEN not in built.proc.stdout + built.proc.stderr
    client = s3_client(tree.s3)
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        assert TOKEN.encode() not in body, obj["Key"]


def test_the_launcher_builds_the_tree(tree: Tree, tmp_path: Path) -> None:
    """`eos-image-builder -n -d LOCALDIR -p eib-demo master`, as the legacy jobs call it:
    by its path, with the system's PATH (its `python3` is not eib's `.venv`)."""
    try:
        proc = run([str(LAUNCHER), "--config-dir", str(tree.config), "-d", str(tree.local),
                    "-p", "eib-demo", "-a", "amd64", "-n", "master"],
                   PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   EIB_CACHE_DIR=str(tmp_path / "cache"), EIB_WORK_DIR=str(tmp_path / "work"),
                   EIB_OUTPUT_DIR=str(tmp_path / "out"), EIB_DEMO_DIR=str(DEMO_DIR),
                   EIB_LEGACY_LOCKFILE=str(tmp_path / "eos-image-builder.lock"))
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        out = tmp_path / "out"
        images = sorted(out.glob("eib-demo-master-amd64-amd64.*.img.gz"))
        assert len(images) == 1, sorted(p.name for p in out.iterdir())
        outversion = images[0].name.removesuffix(".img.gz")
        apps = (out / f"{outversion}.installed-apps.txt").read_text().split()
        assert sorted(apps) == ["org.eib.Clock", "org.eib.Hello"]
        assert (out / "SHA256SUMS").is_file()
        # A dry run publishes nothing: the legacy publish stage is skipped.
        assert not (out / f"{outversion}.build.txt").exists()
        assert "publish skipped (dry run)" in proc.stdout + proc.stderr
    finally:
        remove(tmp_path)
