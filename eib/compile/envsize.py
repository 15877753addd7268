"""The total size of a hook's environment, checked when the plan is made.

Each value is capped (`eib.limits.MAX_VALUE_CHARS`), but many values can
still add up past what the kernel lets a program start with: the arguments
and environment together, strings and pointers, must fit in `ARG_MAX`
(`getconf ARG_MAX`, a quarter of the stack limit: 2 MiB by default).  A
plan past it would fail at the first hook with "Argument list too long";
it is refused at compile time instead, naming the biggest variables.

Some variables are only known when the build runs (the dirs, the commit,
`pass_env`, secret values in place of their tokens): a margin is kept for
them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from eib.errors import UserError

DEFAULT_ARG_MAX = 2 * 1024 * 1024
"""Linux's `ARG_MAX` under the default 8 MiB stack limit; never assumed larger.

A bigger stack limit on the compiling host must not let through a plan that
a default build host cannot start hooks with.
"""

RUNTIME_MARGIN = 256 * 1024
"""Room left for the variables set at run time and a hook's own arguments."""

POINTER = 8
"""Each variable also takes a pointer in the new program's `envp`."""


def exec_limit() -> int:
    """This host's `ARG_MAX`, at most DEFAULT_ARG_MAX."""
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        value = -1
    return min(value, DEFAULT_ARG_MAX) if value > 0 else DEFAULT_ARG_MAX


def variable_bytes(name: str, value: str) -> int:
    """What `NAME=value` takes of ARG_MAX: its bytes, the NUL and its pointer."""
    return len(name.encode()) + 1 + len(value.encode()) + 1 + POINTER


def check_env_size(env: Mapping[str, str]) -> None:
    """Refuse an environment the hooks could not be started with (UserError, exit 2)."""
    allowed = exec_limit() - RUNTIME_MARGIN
    sizes = {name: variable_bytes(name, value) for name, value in env.items()}
    total = sum(sizes.values())
    if total <= allowed:
        return
    largest = sorted(sizes, key=lambda name: (-sizes[name], name))[:3]
    named = ", ".join(f"{name} ({sizes[name]} bytes)" for name in largest)
    raise UserError(
        f"{total} bytes, more than the {allowed} a hook can be started with (ARG_MAX "
        f"{exec_limit()} less {RUNTIME_MARGIN} for the variables set at run time); "
        f"largest: {named}",
        key="hooks environment",
        hint="move large values into files the hooks read",
    )
