"""`${key}` and `${section:key}` expansion, step for step as configparser does it.

The legacy builder used `configparser.ExtendedInterpolation` with `[build]`
as the default section. This is the same algorithm (including its quirk that
a `${key}` reached through another `${key}` is looked up in the section that
started the expansion) with two additions: a cycle is reported as a cycle
naming the key, and every expansion returns the keys it read, so values that
depend on private keys can be kept out of what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eib.errors import Origin, UserError

BUILD = "build"
MAX_DEPTH = 10
_KEYCRE = re.compile(r"\$\{([^}]+)\}")

KeyRef = tuple[str, str]


@dataclass(frozen=True)
class Expanded:
    value: str
    reads: frozenset[KeyRef]


class Interpolator:
    """Expands values of a merged config; `raw` maps section → key → raw value."""

    def __init__(
        self,
        raw: Mapping[str, Mapping[str, str]],
        origin_of: Callable[[str, str], Origin | None],
    ) -> None:
        self._raw = raw
        self._origin_of = origin_of

    def lookup(self, section: str, key: str) -> KeyRef | None:
        """Where `key` is found from `section`: the section itself, then `[build]`."""
        if section in self._raw and key in self._raw[section]:
            return (section, key)
        if key in self._raw.get(BUILD, {}):
            return (BUILD, key)
        return None

    def expand(self, section: str, key: str) -> Expanded:
        raw = self._raw[section][key]
        accum: list[str] = []
        reads: set[KeyRef] = set()
        self._some((section, key), accum, raw, section, 1, [(section, key)], reads)
        return Expanded("".join(accum), frozenset(reads))

    def _fail(self, start: KeyRef, message: str) -> UserError:
        section, key = start
        return UserError(message, origin=self._origin_of(section, key), key=f"[{section}] {key}")

    def _some(
        self,
        start: KeyRef,
        accum: list[str],
        rest: str,
        section: str,
        depth: int,
        stack: list[KeyRef],
        reads: set[KeyRef],
    ) -> None:
        if depth > MAX_DEPTH:
            raise self._fail(start, f"interpolation nests deeper than {MAX_DEPTH} levels: {rest!r}")
        while rest:
            p = rest.find("$")
            if p < 0:
                accum.append(rest)
                return
            if p > 0:
                accum.append(rest[:p])
                rest = rest[p:]
            c = rest[1:2]
            if c == "$":
                accum.append("$")
                rest = rest[2:]
                continue
            if c != "{":
                raise self._fail(start, f"'$' must be followed by '$' or '{{', found: {rest!r}")
            match = _KEYCRE.match(rest)
            if match is None:
                raise self._fail(start, f"bad interpolation reference {rest!r}")
            path = match.group(1).split(":")
            rest = rest[match.end() :]
            if len(path) == 1:
                lookup_section, name = section, path[0].lower()
                where = self.lookup(section, name)
            elif len(path) == 2:
                lookup_section, name = path[0], path[1].lower()
                exists = lookup_section in self._raw or lookup_section == BUILD
                where = self.lookup(lookup_section, name) if exists else None
            else:
                raise self._fail(start, f"more than one ':' in '${{{match.group(1)}}}'")
            if where is None:
                raise self._fail(start, f"'${{{match.group(1)}}}' refers to a missing key")
            reads.add(where)
            value = self._raw[where[0]][where[1]]
            if "$" not in value:
                accum.append(value)
                continue
            frame = (lookup_section, name)
            if frame in stack:
                chain = " → ".join(f"{s}:{k}" for s, k in [*stack, frame])
                raise self._fail(start, f"interpolation cycle: {chain}")
            self._some(start, accum, value, lookup_section, depth + 1, [*stack, frame], reads)
