"""Fixtures for executor tests: a tiny OSTree OS, signed repos served on
127.0.0.1, and a helper that runs the real `eib run`.

The OS is a few files plus a static busybox and a fake kernel/initramfs in
`/usr/lib/modules/<ver>/`: enough for `ostree admin deploy` and for `.chroot`
hooks (busybox sh), small enough to commit and pull in well under a second.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

EIB = [sys.executable, "-m", "eib.cli"]
REF = "os/eibtest/amd64/master"
OS_NAME = "eibtest"
KERNEL_VERSION = "6.1.0-eibtest"
EPOCH = "1764322800"
BUSYBOX_APPLETS = ("sh", "cat", "echo", "mkdir", "readlink", "ls", "grep", "sleep", "true",
                   "test", "touch", "chmod", "id")


@dataclass(frozen=True)
class Signing:
    homedir: Path
    good_key: str
    good_asc: Path
    wrong_key: str
    wrong_asc: Path


@dataclass(frozen=True)
class Served:
    url: str
    root: Path
    good_commit: str
    first_commit: str


def _gen_key(homedir: Path, name: str) -> str:
    params = textwrap.dedent(f"""\
        %no-protection
        Key-Type: RSA
        Key-Length: 2048
        Key-Usage: sign
        Name-Real: {name}
        Name-Email: {name}@example.invalid
        Expire-Date: 0
        %commit
        """)
    subprocess.run(["gpg", "--homedir", str(homedir), "--batch", "--gen-key"],
                   input=params, text=True, check=True, capture_output=True)
    out = subprocess.run(["gpg", "--homedir", str(homedir), "--list-keys", "--with-colons",
                          f"{name}@example.invalid"],
                         text=True, check=True, capture_output=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


@pytest.fixture(scope="session")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signing]:
    """Two throwaway keys: the one the recipe trusts and one it does not."""
    top = tmp_path_factory.mktemp("gpg")
    homedir = top / "home"
    homedir.mkdir(mode=0o700)
    good = _gen_key(homedir, "eibtest-good")
    wrong = _gen_key(homedir, "eibtest-wrong")
    for key, name in ((good, "good.asc"), (wrong, "wrong.asc")):
        armored = subprocess.run(["gpg", "--homedir", str(homedir), "--armor", "--export", key],
                                 text=True, check=True, capture_output=True).stdout
        (top / name).write_text(armored)
    yield Signing(homedir, good, top / "good.asc", wrong, top / "wrong.asc")
    subprocess.run(["gpgconf", "--homedir", str(homedir), "--kill", "all"], check=False)


def make_os_tree(root: Path, marker: str) -> None:
    """A minimal OSTree-deployable OS with busybox as its shell."""
    usr = root / "usr"
    for sub in ("bin", "etc", "lib/modules/" + KERNEL_VERSION, "share/zoneinfo/Europe"):
        (usr / sub).mkdir(parents=True, exist_ok=True)
    for top in ("boot", "dev", "proc", "run", "sys", "sysroot", "tmp", "var"):
        (root / top).mkdir(exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", usr / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (usr / "bin" / applet).symlink_to("busybox")
    (root / "bin").symlink_to("usr/bin")
    release = f'ID=eibtest\nNAME="eib test OS"\nPRETTY_NAME="eib test OS ({marker})"\n'
    (usr / "lib" / "os-release").write_text(release)
    (usr / "etc" / "os-release").write_text(release)
    (usr / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    modules = usr / "lib" / "modules" / KERNEL_VERSION
    (modules / "vmlinuz").write_bytes(b"not a real kernel\n")
    (modules / "initramfs.img").write_bytes(b"not a real initramfs\n")
    (usr / "share" / "zoneinfo" / "Europe" / "Lisbon").write_bytes(b"TZif2 fake zone\n")
    (usr / "lib" / "eibtest-marker").write_text(marker + "\n")


def _commit(repo: Path, tree: Path, version: str, gpg: tuple[Path, str] | None) -> str:
    argv = ["ostree", "commit", f"--repo={repo}", f"--branch={REF}", f"--subject={version}",
            f"--add-metadata-string=version={version}", str(tree)]
    if gpg is not None:
        argv += [f"--gpg-sign={gpg[1]}", f"--gpg-homedir={gpg[0]}"]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, signing: Signing) -> Iterator[Served]:
    """Archive repos `good` (two signed commits), `unsigned` and `wrong` (signed by an
    untrusted key), served over HTTP on 127.0.0.1."""
    top = tmp_path_factory.mktemp("served")
    root = top / "www"
    root.mkdir()
    commits: dict[str, list[str]] = {}
    for name, key in (("good", signing.good_key), ("unsigned", None),
                      ("wrong", signing.wrong_key)):
        repo = root / name
        subprocess.run(["ostree", "init", f"--repo={repo}", "--mode=archive"], check=True)
        commits[name] = []
        for version in ("1.0", "2.0"):
            tree = top / f"tree-{name}-{version}"
            make_os_tree(tree, f"{name} {version}")
            gpg = (signing.homedir, key) if key else None
            commits[name].append(_commit(repo, tree, version, gpg))
        subprocess.run(["ostree", "summary", "-u", f"--repo={repo}"], check=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", root,
                     commits["good"][-1], commits["good"][0])
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Build:
    """One build's directories below tmp_path, and how to run `eib run` on them."""

    top: Path
    recipe: Path

    @property
    def cache(self) -> Path:
        return self.top / "cache"

    @property
    def work(self) -> Path:
        return self.top / "work"

    @property
    def out(self) -> Path:
        return self.top / "out"

    def dir_args(self) -> list[str]:
        return ["--cache-dir", str(self.cache), "--work-dir", str(self.work),
                "--output-dir", str(self.out)]

    def run(self, *args: str, plan: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        source = ["--plan", str(plan)] if plan else [str(self.recipe)]
        return subprocess.run(self.argv(*args, source=source), capture_output=True, text=True,
                              env=eib_env(), timeout=timeout, check=False)

    def argv(self, *args: str, source: list[str] | None = None) -> list[str]:
        return [*EIB, "run", *(source or [str(self.recipe)]), "--dry-run", "--no-disk",
                *self.dir_args(), *args]

    def deployments(self) -> list[Path]:
        return sorted((self.work / "sysroot" / "ostree" / "deploy" / OS_NAME / "deploy")
                      .glob("*.0"))

    def deployment(self) -> Path:
        found = [p for p in self.deployments() if p.is_dir()]
        assert len(found) == 1, found
        return found[0]


def eib_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIB_")}
    env["SOURCE_DATE_EPOCH"] = EPOCH
    return env


def write_hook(
    recipe_dir: Path, group: str, name: str, text: str, executable: bool = False
) -> None:
    path = recipe_dir / "hooks" / group / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o755 if executable else 0o644)


def write_recipe(recipe_dir: Path, served: Served, signing: Signing, *, repo: str = "good",
                 hooks: dict[str, list[str]] | None = None, **sections: dict[str, Any]) -> Path:
    recipe: dict[str, Any] = {
        "eib": 1,
        "variant": {"product": "eibtest", "branch": "master", "arch": "amd64",
                    "personality": "base"},
        "ostree": {
            "url": f"{served.url}/{repo}",
            "deploy_url": "https://updates.example.invalid/ostree",
            "ref": REF,
            "remote": "eibtest",
            "os": OS_NAME,
            "gpg_keys": [str(signing.good_asc)],
            "kernel_args": ["console=ttyS0", "quiet"],
            "pull_retries": 0,
        },
        "hooks": hooks or {},
    }
    for name, values in sections.items():
        recipe.setdefault(name, {}).update(values)
    path = recipe_dir / "recipe.yaml"
    recipe_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def mounts_under(top: Path) -> list[str]:
    prefix = str(top)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        targets = [line.split()[4] for line in f]
    return [t for t in targets if t == prefix or t.startswith(prefix + "/")]


def processes_rooted_under(top: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                root = os.readlink(f"/proc/{entry}/root")
            except OSError:
                continue
            if root == str(top) or root.startswith(str(top) + "/"):
                pids.append(int(entry))
    return pids


def _remove(path: Path) -> None:
    """Delete a test's dirs: ostree deployments are immutable."""
    if path.exists():
        subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, check=False)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    b = Build(tmp_path, tmp_path / "recipe" / "recipe.yaml")
    yield b
    leftover = mounts_under(tmp_path)
    for target in reversed(leftover):
        subprocess.run(["umount", "-l", target], check=False)
    _remove(b.work)
    # Other work dirs a test made (e.g. concurrent builds): let pytest delete them later.
    for deployment in tmp_path.glob("**/ostree/deploy/*/deploy/*"):
        subprocess.run(["chattr", "-f", "-i", str(deployment)], capture_output=True, check=False)
    assert not leftover, f"mounts left behind: {leftover}"
