"""Which files of a legacy tree `eib convert` reads, in the legacy reading order.

Each source is one INI file with the attribute values it applies to (from
its directory and name, as the legacy builder matched them), so the
converter can write it as one overlay keyed by the same attributes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eib.compat.attributes import ATTRIBUTES
from eib.compat.inifile import read_ini
from eib.errors import Origin, UserError


@dataclass
class Source:
    """One INI file of the tree and when it applies."""

    path: Path
    label: str  # path relative to the tree, for comments and output names
    when: dict[str, str]
    private: bool = False
    sections: dict[str, dict[str, str]] = field(default_factory=dict)


def personality_depth(value: str) -> int:
    return value.count("_")


def _attribute_sources(config_dir: Path, label: str) -> Iterator[Source]:
    if (config_dir / "defaults.ini").is_file():
        yield Source(config_dir / "defaults.ini", f"{label}/defaults.ini", {})
    for attr in ATTRIBUTES:
        files = sorted((config_dir / attr).glob("*.ini"),
                       key=lambda p: (personality_depth(p.stem), p.stem))
        for path in files:
            yield Source(path, f"{label}/{attr}/{path.name}", {attr: path.stem})
    for first, second in itertools.combinations(ATTRIBUTES, 2):
        pairs = []
        for path in sorted((config_dir / f"{first}-{second}").glob("*.ini")):
            one, two = _split_pair(config_dir, first, path.stem)
            depth = personality_depth(two) if second == "personality" else 0
            pairs.append((depth, path, one, two))
        for _, path, one, two in sorted(pairs, key=lambda p: (p[0], p[1].name)):
            yield Source(path, f"{label}/{first}-{second}/{path.name}", {first: one, second: two})


def _split_pair(config_dir: Path, first: str, stem: str) -> tuple[str, str]:
    """`eos-es_GT` → (`eos`, `es_GT`); a dash inside a value is resolved by known files."""
    splits = [(stem[:i], stem[i + 1 :]) for i, c in enumerate(stem) if c == "-"]
    if not splits:
        raise UserError(
            "an attribute pair file must be named <value1>-<value2>.ini",
            origin=Origin(str(config_dir / stem)),
        )
    known = {p.stem for p in (config_dir / first).glob("*.ini")}
    for one, two in splits:
        if one in known:
            return one, two
    return splits[0]


def tree_sources(config_dir: Path, localdir: Path | None) -> list[Source]:
    """Every file the tree can read, in the legacy order (system files excluded)."""
    sources = list(_attribute_sources(config_dir, "config"))
    if localdir is not None:
        sources += list(_attribute_sources(localdir / "config", "local/config"))
    if (config_dir / "local.ini").is_file():
        sources.append(Source(config_dir / "local.ini", "config/local.ini", {}))
    if localdir is not None and (localdir / "config" / "private.ini").is_file():
        sources.append(
            Source(localdir / "config" / "private.ini", "local/config/private.ini", {}, True)
        )
    if (config_dir / "private.ini").is_file():
        sources.append(Source(config_dir / "private.ini", "config/private.ini", {}, True))
    for source in sources:
        source.sections = read_ini(source.path).sections
    return sources
