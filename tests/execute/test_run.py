"""`eib run` end to end against real ostree, gpg and an HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import yaml

from .conftest import (
    EIB,
    OS_NAME,
    REF,
    Build,
    Served,
    Signing,
    eib_env,
    mounts_under,
    processes_rooted_under,
    write_hook,
    write_recipe,
)

IMAGE_HOOKS = ["50-hostname", "50-timezone", "50-language", "50-xkb", "60-custom",
               "65-inside.chroot", "70-ostree-manifest"]


def _full_recipe(build: Build, served: Served, signing: Signing) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "content", "10-fetch", """
        echo "content for $EIB_PERSONALITY" > "$EIB_CONTENTDIR/fetched"
        test -d "$OSTREE_DEPLOYMENT/usr"  # content hooks run after the deploy
    """)
    write_hook(recipe_dir, "image", "60-custom", """\
        #!/bin/sh
        set -e
        echo "custom hook saw $EIB_PRODUCT $EIB_OUTVERSION" > "$OSTREE_DEPLOYMENT/etc/custom-hook"
        echo "custom hook output line"
    """, executable=True)
    write_hook(recipe_dir, "image", "65-inside.chroot", """
        readlink /proc/self/root > /etc/chroot-root
        grep -E ' /(proc|tmp|var|sysroot|dev/pts) ' /proc/self/mounts |
            while read -r src dst fs rest; do echo "$dst $fs"; done > /etc/chroot-mounts
        cat /usr/lib/eibtest-marker > /etc/chroot-marker
        echo "written inside" > /var/lib/from-chroot
        ls /sysroot/ostree/deploy > /etc/chroot-sysroot
        echo "deployment=$OSTREE_DEPLOYMENT hostname=$EIB_IMAGE_HOSTNAME"
    """)
    write_recipe(
        recipe_dir, served, signing,
        hooks={"content": ["10-fetch"], "image": IMAGE_HOOKS},
        ostree={"ref_deploy": "os/eibtest/amd64/stable"},
        image={"hostname": "eib-test-host", "timezone": "Europe/Lisbon",
               "language": "pt_BR.utf8", "xkb_layout": "br", "xkb_variant": "abnt2"},
    )


def test_build_deploys_runs_hooks_and_writes_manifest(
    build: Build, served: Served, signing: Signing
) -> None:
    _full_recipe(build, served, signing)
    proc = build.run()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "[ostree]" in proc.stdout and "[image]" in proc.stdout  # plain progress lines
    assert "publish skipped (dry run)" in proc.stdout

    deployment = build.deployment()
    assert deployment.name == f"{served.good_commit}.0"
    etc = deployment / "etc"
    assert (etc / "hostname").read_text() == "eib-test-host\n"
    assert os.readlink(etc / "localtime") == "../usr/share/zoneinfo/Europe/Lisbon"
    assert (etc / "locale.conf").read_text() == "LANG=pt_BR.utf8\n"
    assert (etc / "vconsole.conf").read_text() == "XKBLAYOUT=br\nXKBVARIANT=abnt2\n"
    assert (etc / "custom-hook").read_text().startswith("custom hook saw eibtest eibtest-master-")
    assert (build.cache / "content" / "fetched").read_text() == "content for base\n"

    # The .chroot hook ran inside the deployment, with its own mounts.
    assert (etc / "chroot-root").read_text() == "/\n"
    assert (etc / "chroot-marker").read_text() == "good 2.0\n"
    mounts = (etc / "chroot-mounts").read_text().splitlines()
    assert "/proc proc" in mounts and "/tmp tmpfs" in mounts and "/dev/pts devpts" in mounts
    assert any(m.startswith("/var ") for m in mounts)
    assert any(m.startswith("/sysroot ") for m in mounts)
    assert (etc / "chroot-sysroot").read_text() == f"{OS_NAME}\n"
    var = build.work / "sysroot" / "ostree" / "deploy" / OS_NAME / "var"
    assert (var / "lib" / "from-chroot").read_text() == "written inside\n"
    assert not Path("/etc/chroot-root").exists()

    # Deployment details: the deploy ref, remote and kernel arguments.
    origin = deployment.with_name(deployment.name + ".origin").read_text()
    assert "refspec=eibtest:os/eibtest/amd64/stable" in origin
    sysroot_repo = build.work / "sysroot" / "ostree" / "repo"
    def repo_config(key: str) -> str:
        return subprocess.run(["ostree", "config", f"--repo={sysroot_repo}", "get", key],
                              capture_output=True, text=True, check=True).stdout.strip()

    assert repo_config('remote "eibtest".url') == "https://updates.example.invalid/ostree"
    assert repo_config('remote "eibtest".gpg-verify') == "true"
    assert repo_config("sysroot.bootloader") == "none"
    entries = list((build.work / "sysroot" / "boot" / "loader" / "entries").glob("*.conf"))
    assert len(entries) == 1 and "console=ttyS0 quiet" in entries[0].read_text()

    # The cache repo: the pulled ref and the deploy ref both point at the commit.
    refs = subprocess.run(["ostree", "refs", f"--repo={build.cache}/ostree/repo"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert sorted(refs) == [f"eibtest:{REF}", "eibtest:os/eibtest/amd64/stable"]

    # Output dir: log, manifest, public config (YAML and legacy INI), plan, ostree.txt, sums.
    outversion = "eibtest-master-amd64-amd64.251128-094000.base"
    names = sorted(p.name for p in build.out.iterdir())
    assert names == sorted(["build.txt", f"{outversion}.manifest.json",
                            f"{outversion}.config.yaml", f"{outversion}.plan.json",
                            f"{outversion}.config.ini", f"{outversion}.ostree.txt",
                            "SHA256SUMS"])
    manifest = json.loads((build.out / f"{outversion}.manifest.json").read_text())
    assert manifest["ostree"]["commit"] == served.good_commit
    assert manifest["ostree"]["version"] == "2.0"
    # 70-ostree-manifest: the legacy `ref` is the ref the OS follows; eib keeps both.
    ostree = manifest["ostree"]
    assert ostree["ref"] == ostree["ref_deploy"] == "os/eibtest/amd64/stable"
    assert manifest["product"] == "eibtest" and manifest["personality"] == "base"
    assert manifest["arch"] == "amd64" and manifest["build_version"] == "251128-094000"
    assert manifest["builder"]["name"] == "eib"
    config_yaml = yaml.safe_load((build.out / f"{outversion}.config.yaml").read_text())
    assert config_yaml["image"]["hostname"] == "eib-test-host"
    assert config_yaml["hooks"]["image"] == sorted(IMAGE_HOOKS)

    log = (build.out / "build.txt").read_text()
    assert "ostree pull" in log and "ostree admin deploy" in log
    assert "[image/60-custom] custom hook output line" in log
    assert "[image/65-inside.chroot] deployment=/ hostname=eib-test-host" in log
    assert not mounts_under(build.top)
    assert not processes_rooted_under(build.top)


def test_pinned_commit_is_deployed(build: Build, served: Served, signing: Signing) -> None:
    write_recipe(build.recipe.parent, served, signing, ostree={"commit": served.first_commit})
    proc = build.run("--stages", "ostree,image")
    assert proc.returncode == 0, proc.stderr
    assert build.deployment().name == f"{served.first_commit}.0"
    assert (build.deployment() / "usr/lib/eibtest-marker").read_text() == "good 1.0\n"
    # Only the chosen stages ran: no manifest.
    assert not list(build.out.glob("*.manifest.json"))


def test_unsigned_and_wrongly_signed_commits_are_refused(
    build: Build, served: Served, signing: Signing
) -> None:
    for repo in ("unsigned", "wrong"):
        write_recipe(build.recipe.parent, served, signing, repo=repo)
        proc = build.run()
        assert proc.returncode == 1, proc.stderr
        message = proc.stderr.strip()
        assert message.startswith("eib: build failed: ostree/pull: refusing commit"), message
        assert "unsigned or not signed by a key in ostree.gpg_keys" in message
        assert "Traceback" not in proc.stderr
        # A failed build leaves its log and a FAILED note, no image set.
        assert sorted(p.name for p in build.out.iterdir()) == ["FAILED", "build.txt"]
        assert (build.out / "FAILED").read_text().startswith("this build failed: ostree/pull")
        assert not build.deployments()


def test_failing_hook_runs_error_hooks_and_cleans_up(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "10-daemon.chroot", """
        sleep 600 &
        echo "left a daemon behind"
    """)
    write_hook(recipe_dir, "image", "20-fail.chroot", """
        sleep 600 &
        echo "about to fail"
        exit 3
    """)
    write_hook(recipe_dir, "image", "30-never", "touch \"$OSTREE_DEPLOYMENT/etc/never\"\n")
    # As in the legacy eib_error: a failing error hook does not stop the next
    # one, and a `.chroot` error hook is skipped (no chroot in that group).
    write_hook(recipe_dir, "error", "05-fails", "exit 4\n")
    write_hook(recipe_dir, "error", "10-report", """
        echo "error hook saw $EIB_OUTVERSION" > "$EIB_OUTDIR/error-hook-ran"
    """)
    write_hook(recipe_dir, "error", "20-inside.chroot", "touch /etc/error-chroot\n")
    write_recipe(recipe_dir, served, signing,
                 hooks={"image": ["10-daemon.chroot", "20-fail.chroot", "30-never"],
                        "error": ["05-fails", "10-report", "20-inside.chroot"]})
    proc = build.run()
    assert proc.returncode == 1
    assert "eib: build failed: image/hook 20-fail.chroot: hook image/20-fail.chroot exited " \
           "with status 3; last output: about to fail" in proc.stderr
    assert (build.out / "error-hook-ran").read_text().startswith("error hook saw eibtest-")
    log = (build.out / "build.txt").read_text()
    assert "[image/20-fail.chroot] about to fail" in log
    assert "hook image/20-fail.chroot exited with status 3" in log
    assert "hook error/05-fails exited with status 4" in log
    assert "Skipping hook, no chroot available: error/20-inside.chroot" in log
    assert not (build.deployment() / "etc" / "never").exists()
    assert not mounts_under(build.work)
    assert not processes_rooted_under(build.work)


def test_legacy_hook_runs_unchanged(build: Build, served: Served, signing: Signing) -> None:
    recipe_dir = build.recipe.parent
    # Written against the old builder: sourced (not executable), uses the
    # library's eib_outfile and the EIB_* environment.
    write_hook(recipe_dir, "image", "40-legacy", """
        # legacy hook
        hostfile=$(eib_outfile hostname.txt)
        echo "${EIB_IMAGE_HOSTNAME}" > "${hostfile}"
        echo "${EIB_OSTREE_OS}" > "${OSTREE_DEPLOYMENT}/etc/legacy-os"
    """)
    write_recipe(recipe_dir, served, signing, hooks={"image": ["40-legacy"]},
                 image={"hostname": "legacy-host"})
    proc = build.run("--stages", "ostree,image")
    assert proc.returncode == 0, proc.stderr + (build.out / "build.txt").read_text()[-2000:]
    outversion = "eibtest-master-amd64-amd64.251128-094000.base"
    assert (build.out / f"{outversion}.hostname.txt").read_text() == "legacy-host\n"
    assert (build.deployment() / "etc" / "legacy-os").read_text() == f"{OS_NAME}\n"


def test_saved_plan_builds_without_the_recipe_tree_and_an_edited_plan_is_refused(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    write_hook(recipe_dir, "image", "10-note", "echo one > \"$OSTREE_DEPLOYMENT/etc/note\"\n")
    write_recipe(recipe_dir, served, signing, hooks={"image": ["10-note"]})
    plan = build.top / "plan.json"
    made = subprocess.run([*EIB, "plan", str(build.recipe), "--json"],
                          capture_output=True, text=True, env=eib_env(), check=False)
    assert made.returncode == 0, made.stderr
    plan.write_text(made.stdout)
    assert str(recipe_dir / "hooks") not in made.stdout  # hooks travel by content

    # The recipe tree (hooks, keys, recipe) goes away: the plan alone builds.
    moved = build.top / "elsewhere"
    recipe_dir.rename(moved)
    try:
        proc = build.run("--stages", "ostree,image", plan=plan)
        assert proc.returncode == 0, proc.stderr
        assert (build.deployment() / "etc" / "note").read_text() == "one\n"

        # The same plan resumed with the remaining stages continues that build.
        proc = build.run("--stages", "manifest", plan=plan)
        assert proc.returncode == 0, proc.stderr
        manifest = json.loads(next(build.out.glob("*.manifest.json")).read_text())
        assert manifest["ostree"]["commit"] == served.good_commit
        assert (build.out / "build.txt").read_text().count("building eibtest-") == 2
    finally:
        moved.rename(recipe_dir)

    # A hook edited inside the plan no longer matches its pinned sha256.
    data = json.loads(plan.read_text())
    hook = next(h for h in data["hooks"] if h["name"] == "10-note")
    hook["content"] = hook["content"].replace("one", "two")
    plan.write_text(json.dumps(data))
    proc = build.run("--stages", "ostree,image", plan=plan)
    assert proc.returncode == 1
    assert "10-note" in proc.stderr and "does not match its sha256" in proc.stderr


def test_bad_input_exits_2(build: Build, served: Served, signing: Signing) -> None:
    write_recipe(build.recipe.parent, served, signing)
    proc = build.run("--stages", "ostree,imgae")
    assert proc.returncode == 2
    assert "unknown stage 'imgae'" in proc.stderr and "did you mean 'image'" in proc.stderr
    build.out.mkdir(parents=True)
    (build.out / "precious.txt").write_text("mine")
    proc = build.run()
    assert proc.returncode == 2
    assert "is not empty and holds no previous build" in proc.stderr
    assert (build.out / "precious.txt").read_text() == "mine"


def test_publish_hooks_run_without_dry_run(build: Build, served: Served, signing: Signing) -> None:
    write_recipe(build.recipe.parent, served, signing, hooks={"publish": ["50-sha256sums"]})
    argv = [a for a in build.argv() if a != "--dry-run"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=eib_env(), timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    sums = (build.out / "SHA256SUMS").read_text().splitlines()
    files = sorted(p.name for p in build.out.iterdir() if p.name not in ("SHA256SUMS",
                                                                         "build.txt"))
    assert [line.split("  ")[1] for line in sums] == files
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((build.out / name).read_bytes()).hexdigest() == digest


def test_conflicting_manifest_fragments_name_both_files(
    build: Build, served: Served, signing: Signing
) -> None:
    write_hook(build.recipe.parent, "manifest", "50-flat", """
        echo '{"ostree": "not an object"}' > "$EIB_MANIFESTDIR/zz-flat.json"
    """)
    write_recipe(build.recipe.parent, served, signing, hooks={"manifest": ["50-flat"]})
    proc = build.run()
    assert proc.returncode == 1
    expected = "eib: build failed: manifest/merge: manifest key 'ostree' is an object in "
    assert expected in proc.stderr
    assert "/manifest/ostree.json but not in " in proc.stderr
    assert proc.stderr.rstrip().endswith("/manifest/zz-flat.json")
    assert not list(build.out.glob("*.manifest.json"))


def test_sigterm_mid_chroot_hook_cleans_up(build: Build, served: Served, signing: Signing) -> None:
    write_hook(build.recipe.parent, "image", "10-slow.chroot", """
        touch /var/started
        sleep 600
    """)
    write_recipe(build.recipe.parent, served, signing, hooks={"image": ["10-slow.chroot"]})
    started = build.work / "sysroot" / "ostree" / "deploy" / OS_NAME / "var" / "started"
    proc = subprocess.Popen(build.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=eib_env())
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists()
        assert mounts_under(build.work)  # the chroot's mounts are up
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert stderr.strip().splitlines()[-1] == "eib: interrupted during image/hook 10-slow.chroot"
    assert not mounts_under(build.work)
    assert not processes_rooted_under(build.work)


def test_secrets_reach_hooks_but_not_log_or_manifest(
    build: Build, served: Served, signing: Signing
) -> None:
    token = "s3cr3t-token-value"
    write_hook(build.recipe.parent, "image", "10-secret", """
        echo "$EIB_SECRETS_TOKEN" > "$OSTREE_DEPLOYMENT/etc/token"
        echo "using token $EIB_SECRETS_TOKEN"
        echo "{\\"token_used\\": \\"$EIB_SECRETS_TOKEN\\"}" > "$EIB_MANIFESTDIR/secret.json"
    """)
    write_recipe(build.recipe.parent, served, signing, hooks={"image": ["10-secret"]},
                 secrets={"token": {"env": "TEST_TOKEN_VALUE"}})
    proc = subprocess.run(build.argv(), capture_output=True, text=True, timeout=120,
                          env={**eib_env(), "TEST_TOKEN_VALUE": token}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (build.deployment() / "etc" / "token").read_text() == token + "\n"
    for path in build.out.iterdir():
        assert token not in path.read_text(), path.name
    assert "[image/10-secret] using token <redacted>" in (build.out / "build.txt").read_text()
    manifest = json.loads(next(build.out.glob("*.manifest.json")).read_text())
    assert manifest["token_used"] == "<redacted>"


def test_arm64_deploys_with_uboot_env(build: Build, served: Served, signing: Signing) -> None:
    write_recipe(build.recipe.parent, served, signing)
    proc = build.run("--stages", "ostree,image", "--arch", "arm64")
    assert proc.returncode == 0, proc.stderr
    boot = build.work / "sysroot" / "boot"
    uenv = (boot / "loader" / "uEnv.txt").read_text()
    assert f"/boot/ostree/{OS_NAME}-" in uenv and "vmlinuz-6.1.0-eibtest" in uenv
    assert "bootargs=console=ttyS0 quiet ostree=/ostree/boot." in uenv


def test_host_hook_background_processes_do_not_outlive_it(
    build: Build, served: Served, signing: Signing
) -> None:
    recipe_dir = build.recipe.parent
    pidfile = build.top / "daemon.pid"
    write_hook(recipe_dir, "image", "30-daemon", f"""
        sleep 600 &
        echo $! > {pidfile}
        echo started a daemon
    """)
    write_recipe(recipe_dir, served, signing, hooks={"image": ["30-daemon"]})
    proc = build.run("--stages", "ostree,image", "--no-disk")
    assert proc.returncode == 0, proc.stderr + (build.out / "build.txt").read_text()[-2000:]
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stat = Path(f"/proc/{pid}/stat")
    state = stat.read_text().split()[2] if stat.exists() else ""
    assert state in ("", "Z"), f"the hook's background process {pid} is still running"
    assert "left background processes; they were killed" in (build.out / "build.txt").read_text()
