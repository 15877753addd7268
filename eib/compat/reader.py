"""A legacy config tree read into one merged configuration.

The order of files, the namespaces that keep `_add`/`_del` keys of different
files apart, the merged list options and the private files follow
LEGACY-INI.md exactly; every key remembers the file and line it came from.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from eib.compat.attributes import (
    ATTRIBUTES,
    DEFAULT_CACHEDIR,
    DEFAULT_SYSCONFDIR,
    build_section,
    personality_prefixes,
    resolve_variant,
)
from eib.compat.inifile import IniFile, read_ini
from eib.compat.interpolate import BUILD, Expanded, Interpolator
from eib.errors import Origin, UserError

log = logging.getLogger("eib.compat")

MERGED_OPTIONS: tuple[tuple[str, str], ...] = (
    ("buildroot", "mounts"),
    ("check", "hooks"),
    ("content", "hooks"),
    ("endlesskey", "collections"),
    ("error", "hooks"),
    ("flatpak", "locales"),
    ("flatpak-remote-*", "apps"),
    ("flatpak-remote-*", "runtimes"),
    ("flatpak-remote-*", "exclude"),
    ("flatpak-remote-*", "allow_extra_data"),
    ("image", "hooks"),
    ("image", "icon_grid"),
    ("image", "settings"),
    ("image", "settings_locks"),
    ("kolibri", "install_channels"),
    ("kolibri-*", "exclude_node_ids"),
    ("kolibri-*", "include_node_ids"),
    ("manifest", "hooks"),
    ("publish", "hooks"),
)
BUILD_ORIGIN = Origin("<build attributes>")


@dataclass
class Entry:
    """One option of the merged config: its raw value and where it was set."""

    value: str
    origin: Origin
    private: bool = False
    namespace: str = ""
    merged: bool = False
    # For a merged option: the value built from public add/del keys only, or
    # None when that value would reveal a private one.
    public_value: str | None = None


@dataclass(frozen=True)
class ConfigSource:
    """A file to read (if it exists) and the namespace of its add/del keys."""

    path: Path
    namespace: str
    private: bool = False


@dataclass
class LegacyConfig:
    """The merged configuration of one variant."""

    sections: dict[str, dict[str, Entry]]
    files: list[Path] = field(default_factory=list)
    section_origins: dict[str, Origin] = field(default_factory=dict)
    # Sections that only private files define: not shown at all.
    private_sections: set[str] = field(default_factory=set)
    _cache: dict[tuple[str, str], Expanded] = field(default_factory=dict, repr=False)
    _interp: Interpolator | None = field(default=None, repr=False)

    def changed(self) -> None:
        """Forget expansions after the options changed."""
        self._cache.clear()
        self._interp = None

    def raw(self) -> dict[str, dict[str, str]]:
        return {s: {k: e.value for k, e in opts.items()} for s, opts in self.sections.items()}

    def interpolator(self) -> Interpolator:
        if self._interp is None:
            self._interp = Interpolator(self.raw(), self.origin_of)
        return self._interp

    def origin_of(self, section: str, key: str) -> Origin | None:
        entry = self.sections.get(section, {}).get(key)
        return entry.origin if entry else self.section_origins.get(section)

    def expanded(self, section: str, key: str) -> Expanded:
        ref = (section, key)
        if ref not in self._cache:
            self._cache[ref] = self.interpolator().expand(section, key)
        return self._cache[ref]

    def get(self, section: str, key: str) -> str:
        """The expanded value used by the build (private values included)."""
        return self.expanded(section, key).value

    def resolved(self) -> dict[str, dict[str, str]]:
        """Every option expanded; the first bad reference is an error naming its key."""
        interp = self.interpolator()
        out: dict[str, dict[str, str]] = {}
        for section, entries in self.sections.items():
            out[section] = {}
            for key in entries:
                ref = (section, key)
                if ref not in self._cache:
                    self._cache[ref] = interp.expand(section, key)
                out[section][key] = self._cache[ref].value
        return out

    def private_keys(self) -> frozenset[tuple[str, str]]:
        return frozenset(
            (s, k) for s, opts in self.sections.items() for k, e in opts.items() if e.private
        )

    def hidden_keys(self) -> frozenset[tuple[str, str]]:
        """Keys whose values must not show: private ones, and merged lists fed by them."""
        return frozenset(
            (s, k)
            for s, opts in self.sections.items()
            for k, e in opts.items()
            if e.private or (e.merged and e.public_value != e.value)
        )

    def origins(self) -> dict[tuple[str, str], Origin]:
        return {(s, k): e.origin for s, opts in self.sections.items() for k, e in opts.items()}


def attribute_files(
    config_dir: Path, prefix: str, values: dict[str, str]
) -> Iterator[ConfigSource]:
    """defaults.ini, then one file per attribute, then one per attribute pair."""
    choices = {
        attr: personality_prefixes(values[attr]) if attr == "personality" else [values[attr]]
        for attr in ATTRIBUTES
    }
    yield ConfigSource(config_dir / "defaults.ini", f"{prefix}defaults")
    for attr in ATTRIBUTES:
        for value in choices[attr]:
            yield ConfigSource(config_dir / attr / f"{value}.ini", f"{prefix}{attr}_{value}")
    for first, second in itertools.combinations(ATTRIBUTES, 2):
        for one, two in itertools.product(choices[first], choices[second]):
            yield ConfigSource(
                config_dir / f"{first}-{second}" / f"{one}-{two}.ini",
                f"{prefix}{first}_{second}_{one}_{two}",
            )


def config_sources(
    config_dir: Path, values: dict[str, str], *, sysconfdir: Path, localdir: Path | None
) -> list[ConfigSource]:
    """Every file the legacy builder would read for this variant, in order."""
    sources = list(attribute_files(config_dir, "", values))
    sources.append(ConfigSource(sysconfdir / "config.ini", "system_config"))
    if localdir is not None:
        sources.extend(attribute_files(localdir / "config", "local_", values))
    sources.append(ConfigSource(config_dir / "local.ini", "local"))
    sources.append(ConfigSource(sysconfdir / "private.ini", "system_private", private=True))
    if localdir is not None:
        sources.append(
            ConfigSource(localdir / "config" / "private.ini", "local_private", private=True)
        )
    sources.append(ConfigSource(config_dir / "private.ini", "private", private=True))
    return sources


def read_tree(
    config_dir: Path,
    variant: dict[str, str],
    *,
    localdir: Path | None = None,
    sysconfdir: Path | None = None,
    srcdir: Path | None = None,
    cachedir: Path | str | None = None,
    build_version: str | None = None,
) -> LegacyConfig:
    """Read and merge every file of the tree for `variant` (see LEGACY-INI.md)."""
    config_dir = config_dir.resolve()
    if not config_dir.is_dir():
        raise UserError("legacy config dir not found", origin=Origin(str(config_dir)))
    if localdir is not None:
        localdir = localdir.resolve()
        if not localdir.is_dir():
            raise UserError("local settings dir not found", origin=Origin(str(localdir)))
    values = resolve_variant(variant)
    sysconfdir = sysconfdir.resolve() if sysconfdir is not None else DEFAULT_SYSCONFDIR
    build = build_section(
        values,
        srcdir=(srcdir.resolve() if srcdir is not None else config_dir.parent),
        cachedir=Path(cachedir) if cachedir is not None else DEFAULT_CACHEDIR,
        sysconfdir=sysconfdir,
        localdir=localdir,
        version=build_version,
    )
    config = LegacyConfig(sections={BUILD: {k: Entry(v, BUILD_ORIGIN) for k, v in build.items()}})
    config.section_origins[BUILD] = BUILD_ORIGIN
    seen: set[str] = set()
    for source in config_sources(config_dir, values, sysconfdir=sysconfdir, localdir=localdir):
        if not source.namespace or source.namespace in seen:
            raise UserError(
                f"namespace '{source.namespace}' is empty or used twice",
                origin=Origin(str(source.path)),
            )
        seen.add(source.namespace)
        if not source.path.is_file():
            continue
        log.debug("reading %s (namespace %s)", source.path, source.namespace)
        _apply_file(config, read_ini(source.path), source)
    _merge_options(config)
    return config


def exact_keys_in_table_order(section: str, keys: Mapping[str, object]) -> list[str]:
    """The exact `<option>_add`/`_del` keys of `keys`, in merged-options table order.

    This is the order the legacy builder renamed them in, after every other
    key of the file's section: it decides where the namespaced keys stand,
    and so the order of the merged values.
    """
    out: list[str] = []
    for pattern, option in MERGED_OPTIONS:
        if not fnmatch.fnmatchcase(section, pattern):
            continue
        for op in ("add", "del"):
            name = f"{option}_{op}"
            if name in keys and name not in out:
                out.append(name)
    return out


def _apply_file(config: LegacyConfig, ini: IniFile, source: ConfigSource) -> None:
    """Later files override earlier ones key by key; exact add/del keys get a namespace.

    Two passes per section, as LEGACY-INI.md states: every other key in file
    order, then the exact add/del keys renamed, in table order.  A key that
    already exists keeps its place (dict assignment does exactly that).
    """
    config.files.append(source.path)
    for section, options in ini.sections.items():
        if section not in config.sections:
            config.sections[section] = {}
            config.section_origins[section] = ini.origin(section)
            if source.private:
                config.private_sections.add(section)
        target = config.sections[section]
        exact = exact_keys_in_table_order(section, options)
        plain = [key for key in options if key not in exact]
        names = [(key, key) for key in plain]
        names += [(key, f"{key}_{source.namespace}") for key in exact]
        for key, name in names:
            target[name] = Entry(
                options[key],
                ini.origin(section, key),
                private=source.private,
                namespace=source.namespace,
            )
    config.changed()


def _merge_options(config: LegacyConfig) -> None:
    """Count add/del values (expanded first) into each merged option, in table order."""
    for pattern, option in MERGED_OPTIONS:
        for section in fnmatch.filter(list(config.sections), pattern):
            if section == BUILD:
                continue
            entries = config.sections[section]
            # Globs `<option>_add*`/`_del*`: `hooks_added` is an add key too.
            adds = fnmatch.filter(list(entries), f"{option}_add*")
            dels = fnmatch.filter(list(entries), f"{option}_del*")
            if option not in entries:
                interp = config.interpolator()
                counted = [(k, interp.expand(section, k), +1) for k in adds]
                counted += [(k, interp.expand(section, k), -1) for k in dels]
                hidden = config.hidden_keys()
                merged = _count([(e.value, sign) for _, e, sign in counted])
                public_parts = [(e, sign) for k, e, sign in counted if not entries[k].private]
                leaks = any(e.reads & hidden for e, _ in public_parts)
                public = None if leaks else _count([(e.value, s) for e, s in public_parts])
                first = entries[adds[0]].origin if adds else config.section_origins[section]
                entries[option] = Entry(merged, first, merged=True, public_value=public)
            for key in adds + dels:
                del entries[key]
            config.changed()


def _count(parts: list[tuple[str, int]]) -> str:
    counts: dict[str, int] = {}
    for value, sign in parts:
        for item in value.split():
            counts[item] = counts.get(item, 0) + sign
    return "\n".join(item for item, count in counts.items() if count > 0)
