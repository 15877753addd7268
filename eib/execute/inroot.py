"""Paths inside an OS tree, resolved as the OS itself would see them.

The deployed tree is content from the OS publisher. An absolute symlink in
it (`/etc/hostname -> /root/.ssh/authorized_keys`) means a path *in that
OS*; followed on the build host it leads onto the host's own files. So
whatever eib reads from or writes into a deployment goes through
`resolve_in_root`, which follows links the way `chroot` would: absolute
targets and `..` never leave the root. (The shell twin for hooks is
`eib_root_path` in compat/eib.sh.)
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from eib.errors import BuildError

MAX_LINKS = 40


def resolve_in_root(root: Path, path: str | PurePosixPath) -> Path:
    """The host path of `path` (absolute or relative to the OS's /) inside `root`.

    Every component that exists is a real directory or file of the tree;
    a missing tail is kept as it is (for files about to be written).
    """
    todo = [p for p in PurePosixPath(str(path)).parts if p != "/"]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if candidate.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise BuildError(f"too many levels of symbolic links in {path} inside {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            todo = [p for p in PurePosixPath(target).parts if p != "/"] + todo
        else:
            done.append(part)
    return root.joinpath(*done)


def files_below(root: Path, path: str) -> dict[str, Path]:
    """Regular files below `path` inside `root`: name relative to it → resolved host path."""
    top = resolve_in_root(root, path)
    found: dict[str, Path] = {}
    if not top.is_dir():
        return found
    for dirpath, _dirnames, filenames in os.walk(top):
        for name in filenames:
            rel = Path(dirpath, name).relative_to(top).as_posix()
            real = resolve_in_root(root, f"{path}/{rel}")
            if real.is_file() and not real.is_symlink():
                found[rel] = real
    return dict(sorted(found.items()))
