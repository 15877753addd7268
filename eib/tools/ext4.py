"""ext4 file systems made, checked and read inside an image file at an offset.

`mke2fs -E offset=` writes the file system straight into the disk image, and
e2fsck/debugfs/dumpe2fs accept `file?offset=N`, so the root partition never
needs a loop device, a mount or a second copy of its bytes.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from eib.tools.run import run

# ext4 inode flags (linux/fs/ext4/ext4.h)
IMMUTABLE_FL = 0x00000010


def _no_sync() -> list[str]:
    """`eatmydata` when installed: mke2fs and debugfs fsync the whole image on
    close, which costs seconds and buys nothing for a build intermediate (a
    crashed build is rebuilt, not recovered)."""
    path = shutil.which("eatmydata")
    return [path] if path else []


def _device(image: Path, offset: int) -> str:
    return f"{image}?offset={offset}" if offset else str(image)


def make_ext4(
    image: Path,
    *,
    offset: int,
    size: int,
    source: Path,
    label: str,
    features: str,
    reserved_percent: int = 1,
    inodes: int | None = None,
    uuid: str | None = None,
    hash_seed: str | None = None,
    fake_time: int | None = None,
) -> None:
    """Create an ext4 file system of `size` bytes at `offset`, filled from `source`.

    `uuid`, `hash_seed` and `fake_time` make the result independent of the
    clock and of random numbers, which is what reproducible images need.
    """
    extended = [f"offset={offset}"]
    if hash_seed:
        extended.append(f"hash_seed={hash_seed}")
    argv: list[str | Path] = [
        *_no_sync(),
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-b",
        "4096",
        "-T",
        "default",
        "-O",
        features,
        f"-m{reserved_percent}",
        "-L",
        label,
        "-E",
        ",".join(extended),
        "-d",
        source,
    ]
    if inodes:
        argv += ["-N", str(inodes)]
    if uuid:
        argv += ["-U", uuid]
    argv += [image, f"{size // 1024}k"]
    env = dict(os.environ)
    if fake_time is not None:
        env["E2FSPROGS_FAKE_TIME"] = str(fake_time)
    run(argv, env=env)


def check_ext4(image: Path, offset: int = 0) -> str:
    """Run a read-only forced `e2fsck -fn`; a BuildError carries its complaints."""
    return run(["e2fsck", "-fn", _device(image, offset)]).stdout


def debugfs(
    image: Path,
    commands: Sequence[str],
    *,
    offset: int = 0,
    write: bool = False,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run debugfs requests against the file system and return their output."""
    argv: list[str | Path] = ["debugfs"]
    if write:
        argv = [*_no_sync(), "debugfs", "-w"]
    if len(commands) == 1:
        return run([*argv, "-R", commands[0], _device(image, offset)], env=env).stdout
    # With -f, debugfs echoes each request as "debugfs: <request>"; drop those.
    argv += ["-f", "-", _device(image, offset)]
    out = run(argv, input="\n".join(commands) + "\n", env=env).stdout
    return "".join(
        line for line in out.splitlines(keepends=True) if not line.startswith("debugfs: ")
    )


def superblock(image: Path, offset: int = 0) -> dict[str, str]:
    """The superblock fields `dumpe2fs -h` prints, as a dict."""
    out = run(["dumpe2fs", "-h", _device(image, offset)]).stdout
    fields: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields[key.strip()] = value.strip()
    return fields


def inode_flags(image: Path, paths: Sequence[str], *, offset: int = 0) -> dict[str, int]:
    """The inode flags of `paths` (absolute paths inside the file system)."""
    out = debugfs(image, [f'stat "{p}"' for p in paths], offset=offset)
    values = [int(m, 16) for m in re.findall(r"Flags: (0x[0-9a-fA-F]+)", out)]
    if len(values) != len(paths):
        raise ValueError(f"debugfs printed {len(values)} flag fields for {len(paths)} paths")
    return dict(zip(paths, values, strict=True))


def normalize_times(image: Path, epoch: int, *, offset: int = 0) -> None:
    """Set every used inode's atime, ctime and crtime to `epoch`.

    mke2fs -d copies them from the host tree, where reading a file moves its
    atime and any change moves its ctime, so they differ between two builds
    of the same tree. mke2fs hands out inodes in order without gaps, so the
    used ones are 1..(count - free). mtime is content and is kept.
    """
    sb = superblock(image, offset)
    used = int(sb["Inode count"]) - int(sb["Free inodes"])
    commands = [
        f"sif <{ino}> {field} {value}"
        for ino in range(1, used + 1)
        for field, value in (
            ("atime", f"@{epoch}"),
            ("ctime", f"@{epoch}"),
            ("crtime", f"@{epoch}"),
            ("atime_extra", "0"),
            ("ctime_extra", "0"),
            ("crtime_extra", "0"),
        )
    ]
    # debugfs stamps the superblock's write time when it closes: fake it too.
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(epoch)}
    debugfs(image, commands, offset=offset, write=True, env=env)


def set_immutable(image: Path, paths: Sequence[str], *, offset: int = 0) -> None:
    """Set the immutable flag on `paths`, keeping their other flags (extents…)."""
    if not paths:
        return
    flags = inode_flags(image, paths, offset=offset)
    debugfs(
        image,
        [f'set_inode_field "{p}" flags 0x{f | IMMUTABLE_FL:x}' for p, f in flags.items()],
        offset=offset,
        write=True,
    )


def set_xattr(image: Path, path: str, name: str, value: str, *, offset: int = 0) -> None:
    """Set the extended attribute `name` of `path` inside the file system.

    Written with debugfs rather than on the source tree: the work dir's file
    system may not take `user.*` attributes, and the image is what counts.
    """
    if any(c.isspace() or c == '"' for c in value):
        raise ValueError(f"xattr value {value!r} holds a space or a quote")
    debugfs(image, [f'ea_set "{path}" {name} {value}'], offset=offset, write=True)


def get_xattr(image: Path, path: str, name: str, *, offset: int = 0) -> str | None:
    """The value of the extended attribute `name` of `path`, or None when unset."""
    out = run(["debugfs", "-R", f'ea_get "{path}" {name}', _device(image, offset)],
              check=False).stdout
    match = re.search(r'= "(.*)"\s*$', out)
    return match.group(1) if match else None
