"""Where a server listens, and the fingerprint that tells servers apart.

A server must never answer with code other than the caller's: the socket
name carries a hash of everything that decides what code runs (the
interpreter, the import path, the mtime and size of every eib module, the
mtime of every import path directory, which changes when packages are
installed or removed), of the file system the caller sees (its root and
mount namespace) and of the settings the server's streams were set up with
(locale and PYTHON* variables).  Computing it costs about a millisecond.
It guards against stale code, not against an adversary (the directory is
the user's own), so two zlib checksums do: hashlib's OpenSSL binding alone
would cost the client more than everything else it imports.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib

# pathlib and dataclasses are left out on purpose: importing them costs more
# than everything else the client does.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# Variables that shape the interpreter or its standard streams at start-up
# (with PYTHON* and LC_*): a child inherits those from the server, so they
# are part of its identity.
STARTUP_VARIABLES = ("LANG",)
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


class ServerAddress:
    """The files of one server: its socket, its lock (held while it lives), its log."""

    def __init__(self, directory: str, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.socket = os.path.join(directory, f"{fingerprint}.sock")
        self.lock = os.path.join(directory, f"{fingerprint}.lock")
        self.log = os.path.join(directory, f"{fingerprint}.log")


def runtime_dir() -> str | None:
    """The per-user directory holding the sockets, or None when it is not safe.

    It must be a real directory owned by this user and closed to others;
    anything else (a symlink, someone else's directory) means no server.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    uid = os.getuid()
    directory = os.path.join(base, "eib") if base else f"/tmp/eib-{uid}"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        return None
    return directory


def code_fingerprint(
    package_dir: str = PACKAGE_DIR,
    path_entries: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> str:
    """Hash of what decides the code a server runs and how its streams behave.

    The launching script's directory (`sys.path[0]`, absent in the server,
    which runs with `-P`) is left out: client and server are started
    differently but import the same code.
    """
    if path_entries is None:
        path_entries = sys.path if sys.flags.safe_path else sys.path[1:]
    entries = path_entries
    env = os.environ if environ is None else environ
    parts = [f"{sys.executable}\0{sys.version}\0{os.getuid()}\0{_file_system_view()}\0"]
    for name in sorted(env):
        if name.startswith(("PYTHON", "LC_")) or name in STARTUP_VARIABLES:
            parts.append(f"env {name}={env[name]}\0")
    for entry in entries:
        try:
            mtime = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = -1
        parts.append(f"path {entry} {mtime}\0")
    for relative, info in _module_stats(package_dir):
        parts.append(f"module {relative} {info.st_mtime_ns} {info.st_size}\0")
    data = "".join(parts).encode(errors="surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _file_system_view() -> str:
    """The caller's root and mount namespace: a caller in a chroot or a container
    resolves paths differently, so it must get a server that sees what it sees."""
    root = os.stat("/")
    try:
        namespace = os.readlink("/proc/self/ns/mnt")
    except OSError:
        namespace = "?"
    return f"root {root.st_dev}:{root.st_ino} {namespace}"


def _module_stats(package_dir: str) -> list[tuple[str, os.stat_result]]:
    found: list[tuple[str, os.stat_result]] = []
    pending = [package_dir]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    relative = os.path.relpath(entry.path, package_dir)
                    found.append((relative, entry.stat()))
    found.sort(key=lambda item: item[0])
    return found


def server_address(environ: dict[str, str] | None = None) -> ServerAddress | None:
    directory = runtime_dir()
    if directory is None:
        return None
    address = ServerAddress(directory, code_fingerprint(environ=environ))
    if len(os.fsencode(address.socket)) > MAX_SOCKET_PATH:
        return None
    return address
