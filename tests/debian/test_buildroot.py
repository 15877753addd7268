"""Host-side hooks in the buildroot of the real Debian OS: they see its files and tools,
write to the deployment and the output dir, use eib.sh, and nothing stays mounted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from eib.demo.debian import DebianPaths
from eib.paths import RECIPES_DIR
from tests.loopback import free_port

from .conftest import CACHE, eib, remove

HOOK = """\
    # Sourced after eib.sh, through bwrap: / is the OS tree being built.
    grep -q '^NAME="EIB Debian OS"' /etc/os-release
    cmp /usr/lib/os-release "$OSTREE_DEPLOYMENT/usr/lib/os-release"
    echo "written from the buildroot" > "$OSTREE_DEPLOYMENT/etc/eib-buildroot"
    out=$(eib_outfile buildroot.txt)
    {
      grep '^NAME=' /etc/os-release
      stat -f -c %T /
      test -d "$EIB_CACHEDIR" && echo cache
      getent passwd messagebus | cut -d: -f1  # from the OS's sysusers.d
      # Where ostree and flatpak stage files (O_TMPFILE): an OSTree tree's /var is empty.
      python3 -c 'import os; os.close(os.open("/var/tmp", os.O_TMPFILE | os.O_WRONLY))' \
        && test -k /var/tmp && echo var-tmp
    } > "$out"
"""
# The legacy builder's own Flatpak hook, cut down: the remote has no key of its own, so
# the OS's trusted.gpg.d verifies it, and `prio` is read as its library reads it.
FLATPAK_CHROOT = """\
#!/usr/bin/python3
import eib
from gi import require_version
require_version('Flatpak', '1.0')
from gi.repository import Flatpak, Gio

config = eib.get_config()
section = 'flatpak-remote-eib-debian'
assert config.getint(section, 'prio', fallback=None) is None
installation = Flatpak.Installation.new_for_path(Gio.File.new_for_path('/var/lib/flatpak'),
                                                 False)
remote = Flatpak.Remote.new('eib-debian')
remote.set_url(config[section]['url'])
remote.set_gpg_verify(True)
installation.modify_remote(remote)
eib.retry(installation.update_remote_sync, 'eib-debian')
transaction = Flatpak.Transaction.new_for_installation(installation)
for app in config[section]['apps'].split():
    transaction.add_install('eib-debian', f'app/{app}/x86_64/stable', None)
transaction.run()
print('installed', config[section]['apps'])
"""


def test_host_side_hooks_run_in_the_os_tree(debian_os: DebianPaths, tmp_path: Path) -> None:
    recipe_dir = tmp_path / "recipe"
    hook = recipe_dir / "hooks" / "image" / "50-in-buildroot"
    hook.parent.mkdir(parents=True)
    hook.write_text(textwrap.dedent(HOOK))
    recipe = recipe_dir / "recipe.yaml"
    recipe.write_text(f"eib: 1\nextends: [{RECIPES_DIR / 'debian.yaml'}]\n"
                      "build:\n  buildroot: true\n"
                      "hooks:\n  image: [50-in-buildroot]\n")
    work, out = tmp_path / "work", tmp_path / "out"
    try:
        proc = eib("run", recipe, "--set", f"demo.port={free_port()}", "--cache-dir", CACHE,
                   "--work-dir", work, "--output-dir", out, "--no-cache", "--dry-run",
                   "--no-disk", timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        log = (out / "build.txt").read_text()
        assert f"host-side hooks run in the buildroot of {debian_os.commit}" in log
        found = sorted(out.glob("*.buildroot.txt"))
        assert len(found) == 1
        assert found[0].read_text().splitlines() == [
            'NAME="EIB Debian OS"', "overlayfs", "cache", "messagebus", "var-tmp"]
        deployment = next((work / "sysroot/ostree/deploy/eib-debian/deploy").glob("*.0"))
        assert (deployment / "etc" / "eib-buildroot").read_text() == \
            "written from the buildroot\n"
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            assert not [line for line in f if str(tmp_path) in line]
        assert not (work / "buildroot").exists()
        # The cached checkout is hard links of the cache repo, kept for the next build.
        assert (CACHE / "buildroot" / debian_os.commit / "usr" / "bin" / "bash").stat().st_nlink > 1
    finally:
        remove(tmp_path / "work")


def test_a_legacy_tree_uses_the_buildroot_when_the_os_has_bash(
    debian_os: DebianPaths, tmp_path: Path
) -> None:
    """Unset, the buildroot is on for a legacy INI tree whose OS has bash; its own
    50-flatpak.chroot installs from a remote the OS's keyring verifies."""
    src = tmp_path / "checkout"
    (src / "config").mkdir(parents=True)
    (src / "config" / "defaults.ini").write_text(textwrap.dedent(f"""\
        [build]
        datadir = ${{srcdir}}/data

        [demo]
        serve = true
        port = {free_port()}
        os = debian

        [ostree]
        dev_pull_url = http://127.0.0.1:${{demo:port}}/ostree
        prod_pull_url = https://ostree.example.org/ostree/debian
        deploy_url = https://updates.example.org/ostree/debian
        ref = os/eib-debian/${{build:arch}}/${{build:branch}}
        remote = eib-debian
        os = eib-debian

        [image]
        hooks_add = 50-in-buildroot 50-flatpak.chroot

        [flatpak-remote-eib-debian]
        url = http://127.0.0.1:${{demo:port}}/flatpak
        apps_add = org.eib.DebianHello
        """))
    keys = src / "data" / "keys"
    keys.mkdir(parents=True)
    (keys / "eib-demo.asc").write_text((RECIPES_DIR / "keys" / "eib-demo.asc").read_text())
    hook = src / "hooks" / "image" / "50-in-buildroot"
    hook.parent.mkdir(parents=True)
    hook.write_text(textwrap.dedent(HOOK))
    (hook.parent / "50-flatpak.chroot").write_text(FLATPAK_CHROOT)
    (hook.parent / "50-flatpak.chroot").chmod(0o755)
    work, out = tmp_path / "work", tmp_path / "out"
    try:
        proc = eib("run", src / "config", "-p", "eib-debian", "-b", "bookworm", "-a", "amd64",
                   "--cache-dir", CACHE, "--work-dir", work, "--output-dir", out, "--no-cache",
                   "--dry-run", "--no-disk", timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        log = (out / "build.txt").read_text()
        assert f"host-side hooks run in the buildroot of {debian_os.commit}" in log
        found = sorted(out.glob("*.buildroot.txt"))
        assert len(found) == 1
        assert found[0].read_text().splitlines()[0] == 'NAME="EIB Debian OS"'
        assert "warning: flatpak.remotes.eib-debian has no key: the checkout's own " \
            "50-flatpak.chroot installs its apps and verifies them" in proc.stdout + proc.stderr
        assert "[image/50-flatpak.chroot] installed org.eib.DebianHello" in log
        var = work / "sysroot/ostree/deploy/eib-debian/var"
        assert (var / "lib/flatpak/app/org.eib.DebianHello/x86_64/stable/active").is_symlink()
        config = (work / "tmp" / "fullconfig.ini").read_text()
        assert "\nprio =" not in config  # unset, not empty: getint would fail on ''
    finally:
        remove(tmp_path / "work")


def test_a_killed_build_leaves_its_buildroot_to_the_next_run(
    debian_os: DebianPaths, tmp_path: Path
) -> None:
    """SIGKILL while a hook runs in the buildroot: the overlay stays mounted and the
    hook's sandbox dies with eib; the next run on the work dir unmounts and removes it."""
    recipe_dir = tmp_path / "recipe"
    hook = recipe_dir / "hooks" / "image" / "50-sleeps"
    hook.parent.mkdir(parents=True)
    hook.write_text('touch "$EIB_TMPDIR/hook-started"\nexec sleep 600\n')
    recipe = recipe_dir / "recipe.yaml"
    recipe.write_text(f"eib: 1\nextends: [{RECIPES_DIR / 'debian.yaml'}]\n"
                      "build:\n  buildroot: true\n"
                      "hooks:\n  image: [50-sleeps]\n")
    work, out = tmp_path / "work", tmp_path / "out"
    argv = [sys.executable, "-m", "eib.cli", "run", str(recipe), "--set",
            f"demo.port={free_port()}", "--cache-dir", str(CACHE), "--work-dir", str(work),
            "--output-dir", str(out), "--no-cache", "--dry-run", "--no-disk"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}

    def overlay_mounts() -> list[str]:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            return [line.split()[4] for line in f if str(work / "buildroot") in line.split()[4]]

    def sleepers() -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd[:2] == [b"sleep", b"600"]:
                found.append(int(pid))
        return found

    try:
        build = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not list(work.glob("tmp/hook-started")) and time.monotonic() < deadline:
            assert build.poll() is None, "the build ended before its hook started"
            time.sleep(0.2)
        assert overlay_mounts(), "the buildroot overlay is not mounted while the hook runs"
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=30)
        deadline = time.monotonic() + 10
        while sleepers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not sleepers(), "the hook in the sandbox outlived the killed build"
        assert overlay_mounts(), "nothing left to reclaim: the test proves nothing"

        hook.write_text("true\n")
        proc = eib(*argv[3:], timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        assert not overlay_mounts()
        assert not (work / "buildroot").exists()
    finally:
        for pid in sleepers():
            os.kill(pid, signal.SIGKILL)
        remove(work)
