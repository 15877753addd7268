"""How big an input may be, and how a file the user names is read, stated once.

Recipes and lock files are small, hand-written or generated files.  Anything
far larger is a mistake (a disk image named as a recipe, a runaway `--set`, a
YAML alias bomb) and is refused while loading, with the file, line and key,
instead of exhausting memory or failing later when a hook cannot be started.
Likewise a FIFO or device named as one is refused, never read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from eib.errors import Origin, UserError

MAX_RECIPE_BYTES = 4 * 1024 * 1024
"""A recipe or `extends` file larger than this is refused before it is parsed.

Real recipes are a few KiB; a converted legacy tree a few hundred.  Parsing
keeps the whole document (and its node graph) in memory, so the file size
bounds the memory a load may take.
"""

MAX_PLAN_BYTES = 64 * 1024 * 1024
"""A saved plan (`--plan FILE`, `plan --diff FILE`) larger than this is refused unread.

A plan holds the resolved recipe (at most a few recipe-sized files) and its
hooks' digests: a few KiB to a few MiB.  The cap keeps a disk image or a log
named by mistake from being read into memory whole.
"""

MAX_VALUE_CHARS = 64 * 1024
"""The longest string a recipe value, `--set` value or variant attribute may be.

Values reach hooks as `EIB_*` environment variables, and Linux refuses to
start a program when one variable is longer than MAX_ARG_STRLEN (128 KiB),
with "Argument list too long" in the middle of a build.  Half of that leaves
room for the variable's name and for a value joined from a list.
"""

MAX_YAML_NODES = 100_000
"""The most values (mappings, lists and scalars) one YAML file may expand to.

Aliases (`*name`) reuse a node without copying it, so a small file can
expand to billions of values ("billion laughs"); counting the values as they
are built stops that long before memory runs out.
"""

MAX_YAML_DEPTH = 64
"""The deepest nesting of mappings and lists in a YAML file (a recipe needs about 5).

It also stops an alias that refers to itself (`&a [*a]`), which would nest
forever.
"""


def check_length(value: str, *, origin: Origin | None, key: str | None) -> None:
    """Refuse a string longer than MAX_VALUE_CHARS, naming where it was set (never echoing it)."""
    if len(value) > MAX_VALUE_CHARS:
        raise UserError(
            f"value is {len(value)} characters long; the limit is {MAX_VALUE_CHARS} "
            "(values reach hooks as environment variables)",
            origin=origin,
            key=key,
        )


_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_input(path: Path, *, limit: int, error: type[UserError] = UserError) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them, or `error` naming it.

    Opened with O_NONBLOCK so that a FIFO (which would block until a writer
    comes) is refused from its `fstat` like a directory or a device.
    """
    origin = Origin(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error("file not found", origin=origin) from None
    except IsADirectoryError:
        raise error("not a regular file (a directory)", origin=origin) from None
    except OSError as err:
        raise error(f"cannot read: {err.strerror}", origin=origin) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "a special file")
        raise error(f"not a regular file ({kind})", origin=origin)
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise error(f"file is larger than the {limit} bytes allowed", origin=origin)
    return data
