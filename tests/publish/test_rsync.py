"""Publishing over ssh with rsync, to a real sshd on 127.0.0.1."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from eib.errors import BuildError
from eib.model.recipe import RsyncTarget
from eib.publish import publish_build, publish_error_log

IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100


@contextmanager
def inotify(*dirs: Path) -> Iterator[list[tuple[str, int, str]]]:
    """Record (directory, mask, name) events on `dirs`, in the kernel's order."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0
    watches = {
        libc.inotify_add_watch(fd, os.fsencode(d), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE): str(d)
        for d in dirs
    }
    events: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def reader() -> None:
        import select

        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                if stop.is_set():
                    return
                continue
            data = os.read(fd, 65536)
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                raw = data[offset + 16 : offset + 16 + length]
                events.append((watches.get(wd, "?"), mask, raw.rstrip(b"\0").decode()))
                offset += 16 + length

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        yield events
    finally:
        stop.set()
        thread.join()
        os.close(fd)


def rsync_target(sshd: Any, path: Path) -> RsyncTarget:
    return RsyncTarget(
        kind="rsync", host="127.0.0.1", user="root", port=sshd.port, path=str(path),
        identity_secret="ssh-key",
    )  # fmt: skip


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_rsync_publishes_everything_only_after_the_whole_transfer(
    sshd: Any, output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    server = tmp_path / "srv"
    dest = server / pub.publish_path
    # Pre-create the build dir and rsync's holding dir so both can be watched from the start.
    holding = dest / ".eib-partial"
    holding.mkdir(parents=True)
    plan = plan_for([rsync_target(sshd, server)])
    secrets = {"ssh-key": sshd.identity.read_text()}  # an inline secret: the key itself
    with inotify(dest, holding) as events:
        report = publish_build(plan, output_dir, secrets, settings=pub.fast)

    assert tree(dest) == tree(output_dir)  # SHA256SUMS included, no marker, no holding dir
    assert not (dest / ".inprogress").exists() and not holding.exists()
    assert report.targets[0].location == f"root@127.0.0.1:{dest}"
    assert oct((dest / f"{pub.outversion}.img.gz").stat().st_mode & 0o777) == "0o644"

    top = {n for n in tree(output_dir) if "/" not in n}
    in_dest = [(i, mask, name) for i, (d, mask, name) in enumerate(events) if d == str(dest)]
    # No final name was ever written in place (only rsync's hidden temp files were)...
    assert [e for e in in_dest if e[2] in top and e[1] & (IN_CREATE | IN_CLOSE_WRITE)] == []
    assert all(name.startswith(".") for _, mask, name in in_dest if mask & IN_CLOSE_WRITE)
    # ...each finished file went to the holding dir first...
    staged = [(i, name) for i, (d, mask, name) in enumerate(events)
              if d == str(holding) and mask & IN_MOVED_TO]  # fmt: skip
    assert {name for _, name in staged} == top
    # ...and appeared under its final name only after every file was complete.
    final = [i for i, mask, name in in_dest if mask & IN_MOVED_TO and name in top]
    assert len(final) == len(top)
    assert max(i for i, _ in staged) < min(final)
    # The marker was there before any file.
    marker = [i for i, mask, name in in_dest if name == ".inprogress" and mask & IN_CREATE]
    assert marker and marker[0] < min(i for i, _ in staged)


@pytest.mark.slow
def test_rsync_failure_mid_transfer_removes_the_remote_dir(
    sshd: Any, output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    server = tmp_path / "srv"
    plan = plan_for([rsync_target(sshd, server)])
    secrets = {"ssh-key": str(sshd.identity)}  # a file secret: its path
    sshd.gate_flag.touch()  # the server cannot write files over 4 MiB: the image fails
    try:
        with pytest.raises(BuildError) as info:
            publish_build(plan, output_dir, secrets, settings=pub.fast)
    finally:
        sshd.gate_flag.unlink()
    assert info.value.stage == "publish" and info.value.step == "rsync"
    assert "rsync to root@127.0.0.1:" in info.value.message
    assert "File too large" in info.value.message
    assert "partial upload was deleted" in info.value.message
    assert not (server / pub.publish_path).exists()
    assert (server / pub.publish_path).parent.is_dir()  # only the build's own dir goes

    publish_error_log(plan, output_dir, secrets, settings=pub.fast)
    assert tree(server / pub.publish_path) == {"build.txt": (output_dir / "build.txt").read_bytes()}

    publish_build(plan, output_dir, secrets, settings=pub.fast)
    assert tree(server / pub.publish_path) == tree(output_dir)


def test_rsync_with_a_wrong_key_fails_before_creating_anything(
    sshd: Any, output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    server = tmp_path / "srv"
    plan = plan_for([rsync_target(sshd, server)])
    with pytest.raises(BuildError) as info:
        publish_build(plan, output_dir, {"ssh-key": str(other)}, settings=pub.fast)
    assert "Permission denied" in info.value.message
    assert not server.exists()
