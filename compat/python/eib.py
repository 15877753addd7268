"""The legacy builder's `eib` Python module, for hooks that `import eib`.

eib puts this directory first on the hooks' PYTHONPATH, so a legacy hook
doing `import eib; config = eib.get_config()` gets the API it was written
against, reading what this build wrote: `$EIB_TMPFULLCONFIG` (every option,
private values included, already expanded) and the manifest in
`$EIB_OUTDIR`.  It is not the eib package, and needs only the standard
library.
"""

from __future__ import annotations

import configparser
import errno
import fcntl
import glob
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from typing import Any, Callable

CACHEDIR = "/var/cache/eos-image-builder"
BUILDDIR = "/var/tmp/eos-image-builder"
SYSCONFDIR = "/etc/eos-image-builder"
LOCKFILE = "/var/lock/eos-image-builder.lock"
LOCKTIMEOUT = 60
SUPPORTED_ARCHES = ["i386", "amd64", "arm64"]

# As the legacy module did: a hook stopped with ^C dies of the signal.
signal.signal(signal.SIGINT, signal.SIG_DFL)

log = logging.getLogger(__name__)


class ImageBuildError(Exception):
    """A build error; the message is the arguments joined with spaces."""

    def __init__(self, *args: object) -> None:
        self.msg = " ".join(str(a) for a in args)
        super().__init__(self.msg)

    def __str__(self) -> str:
        return self.msg


class ImageConfigParser(configparser.ConfigParser):
    """ConfigParser with `${section:key}` interpolation and an ever-present [build]."""

    BUILD_SECTION = "build"
    # Merged options are already merged in the files eib writes.
    MERGED_OPTIONS = [
        ("flatpak-remote-*", "apps"), ("flatpak-remote-*", "runtimes"),
        ("flatpak-remote-*", "exclude"), ("flatpak", "locales"), ("image", "settings"),
        ("image", "settings_locks"), ("image", "icon_grid"),
        ("content", "hooks"), ("image", "hooks"), ("manifest", "hooks"),
        ("publish", "hooks"), ("error", "hooks"), ("check", "hooks"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("interpolation", configparser.ExtendedInterpolation())
        kwargs.setdefault("default_section", self.BUILD_SECTION)
        super().__init__(*args, **kwargs)

    def read_config_file(self, path: str, namespace: str | None = None) -> bool:
        """Read `path` if it exists; True when it was read."""
        return bool(os.path.exists(path) and self.read(path, encoding="utf-8"))

    def merge(self) -> None:
        """Nothing to do: the files eib writes hold the merged values."""

    def copy(self) -> ImageConfigParser:
        new = ImageConfigParser()
        new.read_dict({s: dict(self.items(s, raw=True)) for s in self.sections()})
        for key, value in self.items(self.BUILD_SECTION, raw=True):
            new.set(self.BUILD_SECTION, key, value)
        return new

    def setboolean(self, section: str, option: str, value: bool) -> None:
        self.set(section, option, "true" if value else "false")

    def getenv(self, section: str, option: str) -> tuple[str, str]:
        """(`EIB_SECTION_OPTION`, value) as the legacy builder exported it."""
        name = option if section == self.BUILD_SECTION else f"{section}_{option}"
        name = "EIB_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())
        value = self.get(section, option)
        if value.lower() in ("true", "false"):
            value = value.lower()
        return name, value

    def get_environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for section in [self.BUILD_SECTION, *self.sections()]:
            options = (self.defaults() if section == self.BUILD_SECTION
                       else self._sections[section])  # type: ignore[attr-defined]
            for option in options:
                name, value = self.getenv(section, option)
                env[name] = value
        return env


def setup_logging() -> None:
    """Log to stderr like the builder; DEBUG when EIB_DEBUG=1. Once only."""
    level = logging.DEBUG if os.environ.get("EIB_DEBUG") == "1" else logging.INFO
    logging.basicConfig(level=level, format="+ %(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def get_config(path: str | None = None) -> ImageConfigParser:
    """The full config of this build ($EIB_TMPFULLCONFIG), private values included."""
    if path is None:
        path = os.environ.get("EIB_TMPFULLCONFIG")
        if not path:
            raise ImageBuildError("Path to config file not set in EIB_TMPFULLCONFIG")
    if not os.path.exists(path):
        raise ImageBuildError("No config file found at", path)
    config = ImageConfigParser()
    if not config.read(path, encoding="utf-8"):
        raise ImageBuildError("No configuration read from", path)
    return config


def get_manifest(path: str | None = None) -> dict[str, Any]:
    """The build's manifest (after the manifest stage)."""
    if path is None:
        path = os.path.join(os.environ.get("EIB_OUTDIR", ""),
                            os.environ.get("EIB_OUTVERSION", "") + ".manifest.json")
    if not os.path.exists(path):
        raise ImageBuildError("No manifest file found at", path)
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def retry(func: Callable[..., Any], *args: Any, max_retries: int = 3, timeout: float = 1,
          **kwargs: Any) -> Any:
    """Call `func` at most 1 + max_retries times, sleeping `timeout` s between tries."""
    attempt = 0
    while True:
        try:
            return func(*args, **kwargs)
        except Exception:
            if attempt >= max_retries:
                log.error("Failed %d retries; giving up", max_retries)
                raise
            attempt += 1
            log.warning("Retrying attempt %d", attempt, exc_info=True)
            time.sleep(timeout)


def recreate_dir(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    os.makedirs(path)


def disk_usage(path: str) -> int:
    """Bytes below `path`: the sum of lstat sizes."""
    total = os.lstat(path).st_size
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def get_ostree_trusted_keys(config: ImageConfigParser) -> list[str]:
    """Every `*.asc` in the data and local data dirs' `keys/`, sorted by path."""
    dirs = [os.path.join(config.get("build", d, fallback=""), "keys")
            for d in ("datadir", "localdatadir")]
    dirs = [d for d in dirs if os.path.isdir(d)]
    if not dirs:
        raise ImageBuildError("No gpg keys directories in", " ".join(dirs))
    keys = sorted(k for d in dirs for k in glob.glob(os.path.join(d, "*.asc")))
    if not keys:
        raise ImageBuildError("No gpg keys in", " ".join(dirs))
    return keys


def signal_root_processes(root: str, sig: int) -> int:
    """Send `sig` to every process whose root is inside `root`; how many there were."""
    root = os.path.realpath(root)
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            proc_root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if proc_root == root or proc_root.startswith(root + "/"):
            count += 1
            try:
                os.kill(int(pid), sig)
            except ProcessLookupError:
                pass
    return count


def kill_root_processes(root: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if signal_root_processes(root, sig):
            time.sleep(1)


def udevadm_settle() -> None:
    subprocess.check_call(["udevadm", "settle"])


FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010


def mutable_path(path: str) -> None:
    """Clear the immutable flag (ostree sets it on deployments)."""
    import array

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        flags = array.array("i", [0])
        try:
            fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
            if flags[0] & FS_IMMUTABLE_FL:
                flags[0] &= ~FS_IMMUTABLE_FL
                fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags)
        except OSError as err:
            if err.errno not in (errno.ENOTTY, errno.EOPNOTSUPP):
                raise
    finally:
        os.close(fd)
