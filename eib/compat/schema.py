"""`schema.ini`: which keys must be set, which values and paths are allowed.

The builder's schema and the local settings dir's schema are both applied;
a later schema file overrides a rule of the same key. Rules are checked
against the expanded values the build will use.

A key without one of the three suffixes is no rule at all: the legacy
builder skipped it silently, and its own `schema.ini` has several
(`settings = paths`), so refusing them would refuse every real tree.  eib
skips them too, with one warning each so a typo does not go unnoticed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from eib.compat.inifile import read_ini
from eib.compat.reader import LegacyConfig
from eib.errors import Origin, UserError, did_you_mean
from eib.model.plan import REDACTED

log = logging.getLogger("eib.compat")

SUFFIXES = ("_required", "_values", "_type")
TYPES = ("path", "paths")
# Suffix-less keys already warned about: one warning per key, not per variant.
_warned: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class Rule:
    section: str
    key: str
    kind: str  # required | values | type
    value: str
    origin: Origin


def read_schema(paths: list[Path]) -> list[Rule]:
    """The rules of every existing schema file, later files overriding earlier ones."""
    rules: dict[tuple[str, str, str], Rule] = {}
    for path in paths:
        if not path.is_file():
            continue
        ini = read_ini(path)
        for section, options in ini.sections.items():
            for name, value in options.items():
                origin = ini.origin(section, name)
                suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
                if suffix is None:
                    if (origin.file, section, name) in _warned:
                        continue
                    _warned.add((origin.file, section, name))
                    log.warning(
                        "%s: [%s] %s: ignored: not a _required, _values or _type rule "
                        "(the legacy builder skipped it too)",
                        origin, section, name,
                    )
                    continue
                if name == suffix:
                    raise UserError(
                        f"a schema key names an option before {suffix}",
                        origin=origin,
                        key=f"[{section}] {name}",
                    )
                key = name[: -len(suffix)]
                kind = suffix[1:]
                _check_rule(kind, value, origin, f"[{section}] {name}")
                rules[(section, key, kind)] = Rule(section, key, kind, value, origin)
    return list(rules.values())


def _check_rule(kind: str, value: str, origin: Origin, where: str) -> None:
    if kind == "type" and value not in TYPES:
        raise UserError(
            f"unknown _type '{value}' (known: path, paths)",
            origin=origin,
            key=where,
            hint=did_you_mean(value, TYPES),
        )
    if kind == "required" and value.lower() not in ("true", "false"):
        raise UserError(f"_required must be true or false, not '{value}'", origin=origin, key=where)


def check_schema(config: LegacyConfig, paths: list[Path], *, srcdir: Path) -> None:
    """Raise a UserError for the first option that breaks a rule."""
    private = config.private_keys()
    for rule in read_schema(paths):
        entries = config.sections.get(rule.section, {})
        present = rule.key in entries
        where = f"[{rule.section}] {rule.key}"
        origin = config.origin_of(rule.section, rule.key) or rule.origin
        if rule.kind == "required":
            if rule.value.lower() == "true" and not present:
                raise UserError(
                    f"required option is not set (schema: {rule.origin})",
                    origin=rule.origin,
                    key=where,
                )
            continue
        if not present:
            continue
        value = config.get(rule.section, rule.key)
        shown = REDACTED if (rule.section, rule.key) in private else value
        if rule.kind == "values":
            allowed = rule.value.split()
            if value not in allowed:
                raise UserError(
                    f"value '{shown}' is not one of: {' '.join(allowed)}",
                    origin=origin,
                    key=where,
                    hint=did_you_mean(value, allowed) if shown == value else None,
                )
            continue
        entries_to_check = [value] if rule.value == "path" else value.split()
        if rule.value == "path" and not value:
            continue
        for item in entries_to_check:
            candidate = Path(item) if Path(item).is_absolute() else srcdir / item
            if not candidate.is_file():
                item_shown = REDACTED if shown != value else item
                raise UserError(f"file '{item_shown}' does not exist", origin=origin, key=where)


def schema_files(config_dir: Path, localdir: Path | None) -> list[Path]:
    files = [config_dir / "schema.ini"]
    if localdir is not None:
        files.append(localdir / "config" / "schema.ini")
    return files
