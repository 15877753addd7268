"""A legacy tree with private values builds, and its private values (and values
built from them) stay out of the plan, the outputs and every command line."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from .conftest import EIB, Build, Served, Signing, eib_env, write_hook

PASSWORD = "CANARY-pass-8c1e4f"
TOKEN = "CANARY-token-27b9d0"


def legacy_tree(top: Path, served: Served, signing: Signing) -> Path:
    """defaults.ini (public) + private.ini: a pull URL with a password and a token,
    and a public option that interpolates the token."""
    config = top / "config"
    config.mkdir(parents=True)
    host = served.url.removeprefix("http://")
    (config / "defaults.ini").write_text(
        "[ostree]\n"
        "ref = os/eibtest/amd64/master\n"
        "remote = eibtest\n"
        "os = eibtest\n"
        f"gpg_keys = {signing.good_asc}\n"
        "pull_retries = 0\n"
        "\n[image]\nhooks_add = 10-secret\n"
        "\n[custom]\nheader = Bearer ${custom:token}\n"
    )
    (config / "private.ini").write_text(
        f"[ostree]\nurl = http://builder:{PASSWORD}@{host}/good\n"
        f"\n[custom]\ntoken = {TOKEN}\n"
    )
    write_hook(top, "image", "10-secret", """
        echo "$EIB_CUSTOM_TOKEN" > "$OSTREE_DEPLOYMENT/etc/token"
        echo "$EIB_CUSTOM_HEADER" > "$OSTREE_DEPLOYMENT/etc/header"
        echo "hook saw $EIB_CUSTOM_TOKEN and $EIB_OSTREE_URL"
    """)
    return config


class CmdlineWatch:
    """Samples every process's /proc/PID/cmdline while a build runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            self.seen.add(f.read().decode(errors="replace"))
                    except OSError:
                        pass
            self.stop.wait(0.005)

    def __enter__(self) -> CmdlineWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_legacy_tree_with_private_values_builds_and_hides_them(
    build: Build, served: Served, signing: Signing
) -> None:
    config = legacy_tree(build.top / "legacy", served, signing)
    plan = subprocess.run([*EIB, "plan", str(config), "--json"], capture_output=True,
                          text=True, env=eib_env(), check=False)
    tree = subprocess.run([*EIB, "plan", str(config)], capture_output=True, text=True,
                          env=eib_env(), check=False)
    assert plan.returncode == 0 and tree.returncode == 0, plan.stderr + tree.stderr
    for shown in (plan.stdout, tree.stdout):
        assert PASSWORD not in shown and TOKEN not in shown
    assert "<secret:ostree.url>" in plan.stdout

    with CmdlineWatch() as watch:
        proc = subprocess.run(build.argv(source=[str(config)]), capture_output=True, text=True,
                              env=eib_env(), timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    etc = build.deployment() / "etc"
    assert (etc / "token").read_text() == TOKEN + "\n"
    assert (etc / "header").read_text() == f"Bearer {TOKEN}\n"
    assert any("ostree" in c and "pull" in c for c in watch.seen)  # the sampling saw the build
    leaks = [c for c in watch.seen if PASSWORD in c or TOKEN in c]
    assert leaks == []
    for canary in (PASSWORD, TOKEN):
        assert canary not in proc.stdout + proc.stderr
        for path in build.out.rglob("*"):
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path
    log = (build.out / "build.txt").read_text()
    assert "hook saw <redacted> and <redacted>" in log
    repo = build.cache / "ostree" / "repo"  # holds the URL in its config: root's only
    assert oct(repo.stat().st_mode & 0o777) == "0o700"


PEM = ("-----BEGIN TEST KEY-----\nCANARYline1aGVsbG8gd29ybGQ\nCANARYline2c2VjcmV0IGtleQ\n"
       "-----END TEST KEY-----\n")
ODD = 'CANARY p@ss/w "rd"&x'


def test_every_form_of_a_secret_is_redacted_from_log_and_manifest(
    build: Build, served: Served, signing: Signing
) -> None:
    from .conftest import write_recipe

    write_hook(build.recipe.parent, "image", "10-leak", """\
        #!/usr/bin/env python3
        import json, os, shlex, urllib.parse
        pem, odd = os.environ["EIB_SECRETS_PEM"], os.environ["EIB_SECRETS_ODD"]
        print(pem)
        print(json.dumps({"odd": odd, "pem": pem}))
        print("url", "https://u:" + urllib.parse.quote(odd, safe="") + "@host/")
        print("shell", shlex.quote(odd))
        with open(os.environ["EIB_MANIFESTDIR"] + "/leak.json", "w") as f:
            json.dump({odd: "as a key", "pem": pem}, f)
    """, executable=True)
    write_recipe(build.recipe.parent, served, signing, hooks={"image": ["10-leak"]},
                 secrets={"pem": {"env": "TEST_PEM"}, "odd": {"env": "TEST_ODD"}})
    proc = subprocess.run(build.argv(), capture_output=True, text=True, timeout=120,
                          env={**eib_env(), "TEST_PEM": PEM, "TEST_ODD": ODD}, check=False)
    assert proc.returncode == 0, proc.stderr
    log = (build.out / "build.txt").read_text()
    assert "[image/10-leak] url https://u:<redacted>@host/" in log
    for path in build.out.iterdir():
        assert "CANARY" not in path.read_text(), path.name


def test_a_secret_shorter_than_4_characters_is_refused(
    build: Build, served: Served, signing: Signing
) -> None:
    from .conftest import write_recipe

    write_recipe(build.recipe.parent, served, signing, secrets={"pin": {"env": "TEST_PIN"}})
    proc = subprocess.run(build.argv(), capture_output=True, text=True, timeout=120,
                          env={**eib_env(), "TEST_PIN": "x7q"}, check=False)
    assert proc.returncode == 2
    assert "secret 'pin' is shorter than 4 characters" in proc.stderr
    assert "x7q" not in proc.stdout + proc.stderr


def test_secret_supplied_at_run_time(build: Build, served: Served, signing: Signing,
                                     tmp_path: Path) -> None:
    from .conftest import write_recipe

    write_hook(build.recipe.parent, "image", "10-token", """
        echo "$EIB_SECRETS_TOKEN" > "$OSTREE_DEPLOYMENT/etc/token"
    """)
    write_recipe(build.recipe.parent, served, signing, hooks={"image": ["10-token"]},
                 secrets={"token": {"env": "TEST_TOKEN_NOT_SET"}})
    value = tmp_path / "token.txt"
    value.write_text("CANARY-from-file-31\n")
    typed = subprocess.run(build.argv("--secret", "token=CANARY-typed-in"), capture_output=True,
                           text=True, timeout=120, env=eib_env(), check=False)
    assert typed.returncode == 2 and "CANARY" not in typed.stdout + typed.stderr
    assert "NAME=@FILE or NAME=env:VARIABLE" in typed.stderr
    proc = subprocess.run(build.argv("--secret", f"token=@{value}"), capture_output=True,
                          text=True, timeout=120, env=eib_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert (build.deployment() / "etc" / "token").read_text() == "CANARY-from-file-31\n"
    for path in build.out.iterdir():
        assert "CANARY" not in path.read_text(), path.name
