"""Fetch one secret's value from what its `SecretRef` says, at run time only.

Works from the plan alone: no recipe loading, no legacy tree reading (this
module imports neither `eib.load` nor `eib.compat`), so a saved plan runs on
another machine that holds the same secret files and variables.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from eib.errors import UserError
from eib.model.plan import SecretRef

MIN_LENGTH = 4
_REF = re.compile(r"\$(\$|\{[^}]*\})")


def _fail(ref: SecretRef, message: str) -> UserError:
    return UserError(f"secret '{ref.name}' {message}", key=f"secrets.{ref.name}")


def _read(ref: SecretRef) -> str:
    try:
        return Path(ref.where).read_text(encoding="utf-8")
    except OSError as err:
        raise _fail(ref, f"cannot be read from {ref.where}: {err.strerror}") from None


def _from_yaml(ref: SecretRef) -> str:
    try:
        node: Any = yaml.safe_load(_read(ref))
    except yaml.YAMLError:
        raise _fail(ref, f"cannot be read: {ref.where} is not valid YAML") from None
    for part in ref.key:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise _fail(ref, f"is no longer at {'.'.join(ref.key)} in {ref.where}")
    if not isinstance(node, str | int | float):
        raise _fail(ref, f"at {'.'.join(ref.key)} in {ref.where} is not a scalar")
    return str(node)


def _from_ini(ref: SecretRef, value_of: Callable[[str], str]) -> str:
    """The option as the legacy builder expanded it: `${...}` from the plan's map."""
    parser = configparser.RawConfigParser(
        default_section="\x00none", interpolation=None, strict=False
    )
    try:
        parser.read_string(_read(ref), source=ref.where)
        raw = parser.get(ref.key[0], ref.key[1])
    except (configparser.Error, IndexError):
        raise _fail(ref, f"is no longer in {ref.where}") from None

    def expand(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name = match.group(1)[2:-1]
        if name not in ref.interpolate:
            raise _fail(ref, f"changed in {ref.where} since the plan was made; plan again")
        from eib.secrets.tokens import reveal

        return reveal(ref.interpolate[name], value_of)

    return _REF.sub(expand, raw)


def resolve(ref: SecretRef, value_of: Callable[[str], str]) -> str:
    """The value of `ref`; `value_of` gives other secrets a legacy value refers to."""
    if ref.source == "env":
        if ref.where not in os.environ:
            raise _fail(ref, f"comes from ${ref.where}, which is not set")
        value = os.environ[ref.where]
    elif ref.source == "file":
        if not Path(ref.where).is_file():
            raise _fail(ref, f"names {ref.where}, which is not a file")
        return ref.where  # handed over as a file (credentials, ssh keys)
    elif ref.source == "file-content":
        value = _read(ref).rstrip("\n")
    elif ref.source == "file-key":
        value = (
            _from_ini(ref, value_of) if ref.where.endswith(".ini") else _from_yaml(ref)
        )
    else:  # pragma: no cover - the model allows no other source
        raise _fail(ref, f"has an unknown source {ref.source!r}")
    if len(value) < MIN_LENGTH:
        raise _fail(
            ref, f"is shorter than {MIN_LENGTH} characters: too short to be kept out of logs"
        )
    return value
