"""The warm server: same answers as in-process, much sooner, never stale."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eib.server.address import code_fingerprint
from eib.server.client import is_quick

from .conftest import DEMO, EIB, EOS, ROOT, Eib

SAME_ANSWERS = [
    ("plan", str(DEMO)),
    ("plan", str(DEMO), "--json"),
    ("plan", str(EOS), "--personality", "pt_BR", "--arch", "arm64", "--json"),
    ("plan", str(EOS), "--explain", "flatpak.remotes.flathub.apps"),
    ("plan", str(DEMO), "--set", "image.iso=maybe"),
    ("validate", str(DEMO)),
    ("validate", "/nonexistent/recipe.yaml"),
    ("plan", "--no-such-option"),
    ("schema",),
    ("--help",),
    ("plan", "--help"),
    ("run", "--help"),
    ("--version",),
    (),
]


def test_quick_commands_answer_exactly_as_in_process(eib: Eib) -> None:
    before = eib.start()["served"]
    for args in SAME_ANSWERS:
        served = eib(*args)
        alone = eib(*args, server=False)
        assert (served.returncode, served.stdout, served.stderr) == (
            alone.returncode,
            alone.stdout,
            alone.stderr,
        ), args
    assert eib.current()["served"] == before + len(SAME_ANSWERS)  # type: ignore[index]


def test_errors_keep_their_one_line_and_exit_status(eib: Eib) -> None:
    eib.start()
    result = eib("plan", DEMO, "--set", "image.iso=maybe")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("eib: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_first_quick_command_runs_in_process_and_starts_a_server(eib: Eib) -> None:
    assert eib.sockets() == []
    first = eib("plan", DEMO, "--json")
    assert first.returncode == 0, first.stderr
    assert '"outversion": "eib-demo-master-amd64-amd64.251128-094000.base"' in first.stdout
    eib.wait_for(lambda: eib.current() is not None)
    assert eib.current()["served"] == 0  # type: ignore[index]
    second = eib("plan", DEMO, "--json")
    assert second.stdout == first.stdout
    assert eib.current()["served"] == 1  # type: ignore[index]


def test_builds_and_other_commands_never_run_on_the_server(eib: Eib, tmp_path: Path) -> None:
    eib.start()
    cache = eib("cache", "ls", "--cache-dir", tmp_path / "cache")
    assert cache.returncode == 0, cache.stderr
    inspect = eib("inspect", tmp_path / "missing.img")
    assert inspect.returncode == 2
    assert "missing.img" in inspect.stderr
    assert eib.current()["served"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "quick"),
    [
        ([], True),
        (["--help"], True),
        (["-h"], True),
        (["--version"], True),
        (["plan", "r.yaml", "--json"], True),
        (["validate", "r.yaml"], True),
        (["legacy", "show-config", "config"], True),
        (["run", "--help"], True),
        (["run", "r.yaml"], False),
        (["run", "--set", "--help"], False),
        (["run", "r.yaml", "--help"], False),
        (["publish", "--help", "x"], False),
        (["--version", "run"], False),
        (["boot", "x.img"], False),
        (["cache", "gc"], False),
    ],
)
def test_only_side_effect_free_commands_are_quick(args: list[str], quick: bool) -> None:
    assert is_quick(args) is quick


def test_caller_cwd_environment_and_umask_reach_the_command(eib: Eib, tmp_path: Path) -> None:
    eib.start()
    relative = eib("plan", "demo.yaml", "--json", cwd=ROOT / "recipes", SOURCE_DATE_EPOCH="0")
    assert relative.returncode == 0, relative.stderr
    assert '"build_version": "700101-000000"' in relative.stdout
    out = tmp_path / "converted"
    converted = subprocess.run(
        ["sh", "-c", f'umask 077 && exec "{EIB}" convert "{ROOT / "config"}" "{out}"'],
        capture_output=True,
        text=True,
        env={**eib.env},
        check=False,
    )
    assert converted.returncode == 0, converted.stderr
    written = sorted(out.rglob("*.yaml"))
    assert written
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {"0o600"}
    assert eib.current()["served"] == 2  # type: ignore[index]


def test_the_command_sees_the_callers_terminal(eib: Eib) -> None:
    """A tty on stdout reaches the child itself: the plan tree comes out in colour."""
    eib.start()

    def on_a_terminal(server: bool) -> bytes:
        controller, terminal = pty.openpty()
        env = {**eib.env, "EIB_SERVER": "auto" if server else "off", "COLUMNS": "100"}
        env.pop("NO_COLOR", None)
        process = subprocess.Popen(
            [EIB, "plan", str(DEMO)], stdout=terminal, stderr=terminal, env=env
        )
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            output += chunk
        os.close(controller)
        assert process.wait(timeout=60) == 0
        return output

    served = on_a_terminal(server=True)
    assert b"\x1b[" in served
    assert served == on_a_terminal(server=False)
    assert eib.current()["served"] == 1  # type: ignore[index]


def test_ctrl_c_reaches_the_command(eib: Eib, tmp_path: Path) -> None:
    """The child blocks reading a FIFO; SIGINT to `eib` interrupts it there."""
    eib.start()
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [EIB, "plan", str(DEMO), "--diff", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=eib.env,
    )
    eib.wait_for(lambda: (eib.current() or {}).get("running") == 1)
    time.sleep(0.2)  # let the child reach open() on the FIFO
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (130, "")  # as in-process: typer exits 130
    assert eib.current()["running"] == 0  # type: ignore[index]  # the child is gone


def test_idle_server_exits_and_removes_its_socket(eib: Eib) -> None:
    eib.env["EIB_SERVER_IDLE"] = "1"
    eib.start()
    assert len(eib.sockets()) == 1
    eib.wait_for(lambda: eib.sockets() == [], timeout=30)
    assert eib.status() == []
    again = eib("validate", DEMO)  # no server: runs in-process, starts a new one
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("ok: eib-demo-master-amd64-amd64.251128-094000.base ")


def test_disabled_server_is_never_started(eib: Eib) -> None:
    result = eib("plan", DEMO, server=False)
    assert result.returncode == 0, result.stderr
    time.sleep(1)
    assert eib.sockets() == []
    refused = eib("server", "start", server=False)
    assert refused.returncode == 2
    assert refused.stderr == "eib: error: the eib server is disabled (EIB_SERVER is set to off)\n"


def test_unsafe_socket_directory_means_no_server(eib: Eib) -> None:
    directory = eib.runtime / "eib"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    result = eib("plan", DEMO, "--json")
    assert result.returncode == 0, result.stderr
    time.sleep(1)
    assert list(directory.iterdir()) == []
    refused = eib("server", "start")
    assert refused.returncode == 2
    assert "no safe directory for the server socket" in refused.stderr


def test_server_stop_stops_it(eib: Eib) -> None:
    pid = eib.start()["pid"]
    stopped = eib("server", "stop")
    assert stopped.stdout == f"stopped eib server {pid}\n"
    eib.wait_for(lambda: eib.sockets() == [], timeout=30)
    assert eib("server", "status").stdout.startswith("no eib server is running")


def _package(root: Path) -> Path:
    package = root / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    return package


def test_fingerprint_changes_with_the_code_and_startup_settings(tmp_path: Path) -> None:
    package = _package(tmp_path)
    site = tmp_path / "site"
    site.mkdir()

    def fingerprint(**env: str) -> str:
        return code_fingerprint(str(package), [str(site)], {"HOME": "/root", **env})

    first = fingerprint()
    assert fingerprint() == first
    assert fingerprint(HOME="/elsewhere", TERM="dumb") == first  # unrelated variables
    assert fingerprint(LANG="C") != first
    assert fingerprint(PYTHONUTF8="1") != first

    edited = package / "sub" / "b.py"
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert fingerprint() != first
    second = fingerprint()
    (package / "c.py").write_text("")
    assert fingerprint() != second
    third = fingerprint()
    (site / "newlib").mkdir()  # a package installed beside eib
    os.utime(site, ns=(0, 1))
    assert fingerprint() != third
    (package / "sub" / "__pycache__").mkdir()
    fourth = fingerprint()
    (package / "sub" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"")
    assert fingerprint() == fourth  # bytecode caches are not code


def test_a_server_for_other_code_or_settings_is_not_used(eib: Eib) -> None:
    """The locale is part of the fingerprint, as an edited module is: a caller
    with another one gets its own server, never the other's."""
    eib.env["LANG"] = "C.UTF-8"
    first = eib.start()
    other = eib("plan", DEMO, LANG="C")
    assert other.returncode == 0, other.stderr
    eib.wait_for(lambda: len(eib.status()) == 2)
    rows = {row["pid"]: row for row in eib.status()}
    assert rows[first["pid"]]["served"] == 0
    assert rows[first["pid"]]["current"] is True
    (second,) = (row for pid, row in rows.items() if pid != first["pid"])
    assert second["current"] is False


def test_a_served_command_loads_no_library_in_the_caller(eib: Eib) -> None:
    """What the caller imports is its whole cost: the standard library's C parts."""
    eib.start()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", EIB, "plan", str(DEMO), "--json"],
        capture_output=True,
        text=True,
        env=eib.env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"product": "eib-demo"' in result.stdout
    imported = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "eib.server.client" in imported
    heavy = {"typer", "click", "pydantic", "yaml", "rich", "eib.cli", "json", "socket", "enum"}
    assert imported & heavy == set()
    assert eib.current()["served"] == 1  # type: ignore[index]


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_a_reader_that_stops_early_sees_the_same_as_in_process(eib: Eib, unbuffered: str) -> None:
    """`eib plan --json | head`: the streams are built as the interpreter's own,
    so a closed pipe ends the command the same way (click exits 1 on EPIPE;
    an unbuffered stdout loses the rest quietly)."""
    eib.env["PYTHONUNBUFFERED"] = unbuffered
    eib.start()
    matrix = ["--matrix", "personality=base,en,es,pt_BR", "--matrix", "arch=amd64,arm64"]
    pipeline = f'"{EIB}" plan "{EOS}" {" ".join(matrix)} --json | head -c 100 >/dev/null'

    def status(server: bool) -> tuple[str, str]:
        env = {**eib.env, "EIB_SERVER": "auto" if server else "off"}
        done = subprocess.run(
            ["bash", "-c", pipeline + '; echo "${PIPESTATUS[0]}"'],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return done.stdout, done.stderr

    assert status(server=True) == status(server=False)
    assert eib.current()["served"] == 1  # type: ignore[index]


def test_stop_lets_running_commands_finish_while_callers_run_in_process(
    eib: Eib, tmp_path: Path
) -> None:
    eib.start()
    saved = eib("plan", DEMO, "--json")
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    blocked = subprocess.Popen(
        [EIB, "plan", str(DEMO), "--diff", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=eib.env,
    )
    eib.wait_for(lambda: (eib.current() or {}).get("running") == 1)
    assert eib("server", "stop").stdout.startswith("stopped eib server ")

    meanwhile = eib("validate", DEMO)  # the server takes no new command: in-process
    assert meanwhile.returncode == 0, meanwhile.stderr
    assert meanwhile.stdout.startswith("ok: eib-demo-master-amd64-amd64.251128-094000.base ")

    with open(fifo, "w") as pipe:  # lets the running command read its --diff file
        pipe.write(saved.stdout)
    out, err = blocked.communicate(timeout=60)
    (tmp_path / "saved.json").write_text(saved.stdout)
    alone = eib("plan", DEMO, "--diff", tmp_path / "saved.json", server=False)
    assert (blocked.returncode, out, err) == (0, alone.stdout, alone.stderr)
    eib.wait_for(lambda: eib.sockets() == [], timeout=30)


def test_a_caller_in_another_mount_namespace_gets_its_own_server() -> None:
    """Paths mean what the caller's namespace says: its fingerprint differs."""
    program = "from eib.server.address import code_fingerprint; print(code_fingerprint())"

    def fingerprint(*prefix: str) -> str:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", program], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    here = fingerprint()
    assert fingerprint() == here
    assert fingerprint("unshare", "--mount") != here
