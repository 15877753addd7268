"""Hooks written for the legacy builder run unchanged in a real build: the shell
library's functions, `import eib`, a `/tmp` shared by one group's hooks, and
every variable of the legacy hook environment."""

from __future__ import annotations

import subprocess

# The executor tests' tiny OS and builds (fixtures: tests/compat/conftest.py).
from execute.conftest import Build, Served, Signing, eib_env, write_hook, write_recipe

# Every variable LEGACY-HOOKS.md §2 lists as set for a host-side image hook
# (EIB_LOCALDIR, EIB_DEBUG and GIT_SSH only exist with a localdir, --debug, a helper).
LEGACY_VARIABLES = [
    "EIB_PRODUCT", "EIB_BRANCH", "EIB_ARCH", "EIB_PLATFORM", "EIB_PERSONALITY", "EIB_SERIES",
    "EIB_BUILD_VERSION", "EIB_DRY_RUN", "EIB_USE_PRODUCTION_OSTREE", "EIB_SRCDIR", "EIB_CACHEDIR",
    "EIB_SYSCONFDIR", "EIB_DATADIR", "EIB_HELPERSDIR", "EIB_BASELIB", "EIB_TMPDIR",
    "EIB_CONTENTDIR", "EIB_OUTDIR", "EIB_MANIFESTDIR", "EIB_TMPCONFIG", "EIB_TMPFULLCONFIG",
    "EIB_OUTVERSION", "EIB_OSTREE_REPODIR", "EIB_OSTREE_CHECKOUT", "EIB_SSH_OPTIONS",
    "EIB_IMAGE_HOOKS", "EIB_HOOK_GROUP", "EIB_CACHEDIR_CHROOT", "EIB_SRCDIR_CHROOT",
    "OSTREE_CURRENT_DEPLOYMENT", "OSTREE_DEPLOYMENT", "OSTREE_VAR", "PATH", "PYTHONPATH",
    "AWS_SHARED_CREDENTIALS_FILE", "LANG", "SHELL", "EIB_PUBLISH_S3_BUCKET",
    "EIB_PUBLISH_S3_REGION",
]


def test_sourced_hook_uses_eib_retry_and_checksum_file(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "20-retry", """
        tries="$EIB_TMPDIR/tries"
        flaky() { echo x >> "$tries"; [ "$(wc -l < "$tries")" -ge 3 ]; }
        EIB_RETRY_INTERVAL=0 eib_retry flaky
        wc -l < "$tries" > "$OSTREE_DEPLOYMENT/etc/retry-tries"
        echo "release notes" > "$(eib_outfile notes.txt)"
        checksum_file "$(eib_outfile notes.txt)" "$EIB_OUTDIR/notes.sha256" notes.txt
        ! EIB_RETRY_INTERVAL=0 EIB_RETRY_ATTEMPTS=2 eib_retry false 2> "$EIB_TMPDIR/giving-up"
        grep -q "false failed 2 times; giving up" "$EIB_TMPDIR/giving-up"
    """)
    write_recipe(recipe_dir, served, signing, hooks={"image": ["20-retry"]})
    proc = build.run()
    assert proc.returncode == 0, proc.stderr
    assert (build.deployment() / "etc" / "retry-tries").read_text().strip() == "3"
    notes = next(build.out.glob("*.notes.txt"))
    assert (build.out / "notes.sha256").read_text().endswith("  notes.txt\n")
    (build.out / "notes.txt").write_bytes(notes.read_bytes())
    subprocess.run(["sha256sum", "-c", "notes.sha256"], cwd=build.out, check=True,
                   capture_output=True)


def test_python_hook_imports_eib(build: Build, served: Served, signing: Signing) -> None:
    recipe_dir = build.recipe.parent
    (recipe_dir / "lib").mkdir(parents=True)
    (recipe_dir / "lib" / "sitehelper.py").write_text("GREETING = 'from the tree lib'\n")
    write_hook(recipe_dir, "image", "30-config.py", """
        #!/usr/bin/python3
        import os

        import eib
        import sitehelper

        eib.setup_logging()
        config = eib.get_config()
        calls = []

        def flaky():
            calls.append(1)
            if len(calls) < 2:
                raise OSError("not yet")
            return config.get("custom", "motd")

        motd = eib.retry(flaky, timeout=0)
        try:
            eib.get_manifest()
            manifest = "found"
        except eib.ImageBuildError as err:
            manifest = "missing" if "No manifest file found" in str(err) else str(err)
        etc = os.path.join(os.environ["OSTREE_DEPLOYMENT"], "etc")
        with open(os.path.join(etc, "motd"), "w") as f:
            f.write(f"{motd}|{config.get('build', 'product')}|{len(calls)}|{manifest}|"
                    f"{sitehelper.GREETING}\\n")
        if config.get("image", "hostname") != "py-host":
            raise eib.ImageBuildError("unexpected hostname", config.get("image", "hostname"))
    """, executable=True)
    write_recipe(recipe_dir, served, signing, hooks={"image": ["30-config.py"]},
                 image={"hostname": "py-host"},
                 extra={"custom": {"motd": "Welcome, ${build:product} $$HOME"}})
    proc = build.run()
    assert proc.returncode == 0, proc.stderr
    motd = (build.deployment() / "etc" / "motd").read_text()
    assert motd == "Welcome, eibtest $HOME|eibtest|2|missing|from the tree lib\n"


def test_python_hook_error_fails_the_build(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "30-fail", """
        #!/usr/bin/python3
        import eib
        raise eib.ImageBuildError("settings", "missing")
    """, executable=True)
    write_recipe(recipe_dir, served, signing, hooks={"image": ["30-fail"]})
    proc = build.run()
    assert proc.returncode != 0
    log = (build.out / "build.txt").read_text()
    assert "ImageBuildError: settings missing" in proc.stderr + log


def test_dconf_style_chroot_hooks_share_tmp(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "60-dconf-prepare", """
        mkdir -p "$OSTREE_DEPLOYMENT/tmp/dconf-overrides/locks"
        echo "[org/gnome/desktop]" > "$OSTREE_DEPLOYMENT/tmp/dconf-overrides/00-site"
    """)
    write_hook(recipe_dir, "image", "61-dconf-compile.chroot", """
        cat /tmp/dconf-overrides/00-site > /etc/dconf-compiled
        echo "$EIB_CACHEDIR $EIB_SRCDIR ${EIB_CACHEDIR_CHROOT:-unset}" > /etc/chroot-dirs
        test -f "$EIB_SRCDIR/recipe.yaml"
        test -d "$EIB_CONTENTDIR"
        grep -q '^\\[build\\]' "$EIB_TMPFULLCONFIG"
        test -f /etc/resolv.conf
        echo inside > "$EIB_TMPDIR/from-chroot"
    """)
    write_hook(recipe_dir, "image", "62-after", """
        cat "$EIB_TMPDIR/from-chroot" > "$OSTREE_DEPLOYMENT/etc/tmpdir-shared"
        ls "$OSTREE_DEPLOYMENT/tmp" > "$OSTREE_DEPLOYMENT/etc/tmp-during"
    """)
    write_recipe(recipe_dir, served, signing,
                 hooks={"image": ["62-after", "61-dconf-compile.chroot", "60-dconf-prepare"]})
    proc = build.run()
    assert proc.returncode == 0, proc.stderr
    etc = build.deployment() / "etc"
    assert (etc / "dconf-compiled").read_text() == "[org/gnome/desktop]\n"
    cache, src, chroot_var = (etc / "chroot-dirs").read_text().split()
    assert (cache, src, chroot_var) == ("/tmp/eos-image-builder", "/tmp/eos-image-builder/src",
                                        "unset")
    assert (etc / "tmpdir-shared").read_text() == "inside\n"
    assert "dconf-overrides" in (etc / "tmp-during").read_text().split()
    # Nothing of the group's /tmp, nor the host's resolv.conf, is shipped.
    assert list((build.deployment() / "tmp").iterdir()) == []
    assert not (etc / "resolv.conf").exists()


def test_every_legacy_variable_is_set(build: Build, served: Served, signing: Signing) -> None:
    recipe_dir = build.recipe.parent
    names = " ".join(LEGACY_VARIABLES)
    write_hook(recipe_dir, "image", "10-env", f"""
        missing=""
        for name in {names}; do
          [ -n "${{!name+x}}" ] || missing="$missing $name"
        done
        echo "missing:$missing" > "$OSTREE_DEPLOYMENT/etc/env-check"
        test -d "$EIB_OSTREE_CHECKOUT/ostree/repo"
        deploy="$EIB_OSTREE_CHECKOUT/ostree/deploy/$EIB_OSTREE_OS/deploy"
        test -d "$deploy/$OSTREE_CURRENT_DEPLOYMENT"
        test -f "$EIB_TMPCONFIG" && test -f "$EIB_TMPFULLCONFIG"
        test -e "$EIB_TMPDIR/build.txt"
        head -1 "$EIB_TMPCONFIG" > "$OSTREE_DEPLOYMENT/etc/config-header"
        echo "$EIB_HOOK_GROUP $EIB_DRY_RUN $EIB_PUBLISH_S3_BUCKET $EIB_CACHEDIR_CHROOT" \\
          > "$OSTREE_DEPLOYMENT/etc/env-values"
    """)
    write_recipe(recipe_dir, served, signing, hooks={"image": ["10-env"]},
                 publish={"targets": [{"kind": "s3", "bucket": "eib-test-bucket",
                                       "region": "eu-west-1"}]})
    proc = build.run()
    assert proc.returncode == 0, proc.stderr
    etc = build.deployment() / "etc"
    assert (etc / "env-check").read_text() == "missing:\n"
    assert (etc / "env-values").read_text() == "image true eib-test-bucket /tmp/eos-image-builder\n"
    assert (etc / "config-header").read_text().startswith("# Configuration for eibtest-master-")


def test_legacy_build_log_hook_publishes_the_log(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "publish", "40-build-log", """
        cp "${EIB_TMPDIR}/build.txt" "$(eib_outfile build.txt)"
        echo "$EIB_HOOK_GROUP $EIB_DRY_RUN" > "$EIB_OUTDIR/publish-env"
    """)
    write_recipe(recipe_dir, served, signing, hooks={"publish": ["40-build-log"]})
    argv = [a for a in build.argv() if a != "--dry-run"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=eib_env(), timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    logs = list(build.out.glob("eibtest-*.build.txt"))
    assert len(logs) == 1 and "running hook publish/40-build-log" in logs[0].read_text()
    assert (build.out / "publish-env").read_text() == "publish false\n"


def test_the_trees_own_flatpak_hook_runs_instead_of_eibs_install(
    build: Build, served: Served, signing: Signing
) -> None:
    """A checkout shipping its own `50-flatpak.chroot` (the legacy Python one, with its
    lib/) installs the apps itself: eib runs that hook in its place and does not
    install a second time (the remote is unreachable: an install by eib would fail)."""
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "50-flatpak.chroot", """
        echo "the tree's own install for $EIB_FLATPAK_REMOTE_APPS_APPS" > /etc/own-flatpak-hook
    """)
    write_hook(recipe_dir, "image", "60-after", """
        cp "$OSTREE_DEPLOYMENT/etc/own-flatpak-hook" "$OSTREE_DEPLOYMENT/etc/seen-by-later-hook"
    """)
    write_recipe(recipe_dir, served, signing,
                 hooks={"image": ["50-flatpak.chroot", "60-after"]},
                 flatpak={"remotes": {"apps": {"url": "https://flatpak.invalid/repo",
                                               "gpg_verify": False, "apps": ["org.x.App"]}}})
    proc = build.run()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = (build.deployment() / "etc" / "seen-by-later-hook").read_text()
    assert seen == "the tree's own install for org.x.App\n"
    assert not (build.work / "sysroot/ostree/deploy/eibtest/var/lib/flatpak/app").exists()
