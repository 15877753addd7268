"""A legacy INI tree rewritten as YAML recipes that compile to the same plans.

Each INI file becomes one YAML layer (an overlay keyed by the same
attributes, so personality prefix inheritance maps onto `when:
{personality: es}` matching `es_GT`), listed in the legacy reading order by
the top `recipe.yaml`. References are rewritten to the recipe's
`${section:key.sub}` form.

Some INI constructs have no layer-by-layer YAML equivalent: a suffixed add
key (`apps_add_mandatory`) that a later file overrides, a reference to a
merged list or to a renamed add key, a reference that may expand to several
list items, a reference inside a boolean or integer option. Such an option
is written instead as its final value, per combination of attribute values
the tree distinguishes, in overlays of the top file; a comment says so.
Converted recipes should live in the legacy checkout (the directory holding
the config dir) so `${build:srcdir}` and `hooks/` keep their meaning.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
from pathlib import Path
from typing import Any

import yaml

from eib.compat.attributes import ATTRIBUTES, BUILD_KEYS
from eib.compat.convert_fallback import fallback_doc
from eib.compat.convert_ostree import add_trusted_keys, derived, find_ostree_fallbacks
from eib.compat.convert_sources import Source, personality_depth, tree_sources
from eib.compat.mapping import (
    SECTION_MODELS,
    convert_value,
    merged_option,
    recipe_path,
    to_recipe,
)
from eib.compat.ostree import map_ostree
from eib.compat.reader import MERGED_OPTIONS, read_tree
from eib.errors import Origin, UserError
from eib.load.keypaths import get_at, node_at, set_at
from eib.model import recipe as model
from eib.secrets.tokens import token
from eib.variant import ARCHES as SUPPORTED_ARCHES

KeyPath = tuple[str, ...]
_REF = re.compile(r"\$\{([^}]*)\}")
# Attribute values that name no file: they stand for "any other value" and
# are turned back into `${build:...}` wherever they show up in a value.
SENTINEL = {
    "product": "zz9product",
    "branch": "zz9branch.zz9",
    "platform": "zz9platform",
    "personality": "zz9personality",
}
SENTINEL_SUFFIX = "_zz9"
VERSION_SENTINEL = "zz9version"
CACHE_SENTINEL = "/zz9cachedir"
# Its system files belong to the build host and are not converted (none are read).
SYSCONF_SENTINEL = "/zz9sysconfdir"
# Build keys whose meaning is the same in a YAML recipe kept in the checkout.
PORTABLE_BUILD_KEYS = (
    "product",
    "branch",
    "arch",
    "platform",
    "personality",
    "series",
    "build_version",
    "srcdir",
    "cachedir",
    "localdir",
    "localdatadir",
)
WORD_BUILD_KEYS = PORTABLE_BUILD_KEYS[:7]  # never contain whitespace


def _ref_text(path: KeyPath) -> str:
    return "${" + path[0] + ":" + ".".join(path[1:]) + "}"


class Converter:
    """Turns the sources into layers, deciding which options need their final value."""

    def __init__(self, config_dir: Path, localdir: Path | None) -> None:
        self.config_dir = config_dir
        self.localdir = localdir
        self.sources = tree_sources(config_dir, localdir)
        self.fallback: dict[KeyPath, str] = {}  # path → reason
        self._recipes: dict[Any, tuple[dict[str, Any], dict[str, str]]] = {}
        self.private_paths: set[KeyPath] = set()  # paths private files write to
        self.defined: dict[str, set[str]] = {}
        for source in self.sources:
            for section, options in source.sections.items():
                self.defined.setdefault(section, set()).update(options)
                if section == "build":
                    clash = sorted(set(options) & set(BUILD_KEYS))
                    if clash:
                        raise UserError(
                            "build attributes cannot be set in a file of a converted tree",
                            origin=Origin(str(source.path)),
                            key=f"[build] {clash[0]}",
                        )
        self._find_fallbacks()
        self._empty_merged = self._find_empty_merged()

    # -- analysis ---------------------------------------------------------

    def _find_fallbacks(self) -> None:
        suffixed: dict[tuple[str, str], int] = {}
        for source in self.sources:
            for section, options in source.sections.items():
                for key, raw in options.items():
                    merged = merged_option(section, key)
                    if source.private:
                        target = merged[0] if merged else key
                        self.private_paths.add(recipe_path(section, target)[0])
                    if merged is not None:
                        option, op = merged
                        path, kind = recipe_path(section, option)
                        if kind != "list":
                            self.fallback[path] = f"[{section}] {option} has no list field"
                        if key != f"{option}_{op}":
                            suffixed[(section, key)] = suffixed.get((section, key), 0) + 1
                            if suffixed[(section, key)] > 1:
                                self.fallback[path] = f"[{section}] {key} is overridden"
                        if self._items(raw, section) is None:
                            self.fallback[path] = f"[{section}] {key}: reference in a list"
                        continue
                    path, kind = recipe_path(section, key)
                    if kind == "targets":
                        self.fallback[path] = "publish targets are assembled from several keys"
                    elif kind == "list":
                        if self._items(raw, section) is None:
                            self.fallback[path] = f"[{section}] {key}: reference in a list"
                    elif "${" in raw and (kind != "str" or self._translate(raw, section) is None):
                        self.fallback[path] = f"[{section}] {key}: reference with no YAML form"
                    if source.private and "${" in raw and self._translate(raw, section) is None:
                        secret = ("secrets", f"{section}.{key}", "value")
                        self.fallback[secret] = f"[{section}] {key}: private, with a reference"
        find_ostree_fallbacks(self)

    def _target(self, ref: str, section: str) -> tuple[str, str] | None:
        parts = ref.split(":")
        if len(parts) == 2:
            return parts[0], parts[1].lower()
        if len(parts) != 1:
            return None
        key = parts[0].lower()
        in_section = key in self.defined.get(section, set())
        in_build = key in self.defined.get("build", set()) or key in PORTABLE_BUILD_KEYS
        if in_section and in_build and section != "build":
            return None  # which one applies depends on the variant
        return (section, key) if in_section else ("build", key)

    def _ref_path(self, ref: str, section: str) -> KeyPath | None:
        target = self._target(ref, section)
        if target is None:
            return None
        sec, key = target
        if "." in key or "." in sec or merged_option(sec, key):
            return None
        if any(
            key == option for pattern, option in MERGED_OPTIONS if fnmatch.fnmatchcase(sec, pattern)
        ):
            return None
        if sec == "build":
            if key in PORTABLE_BUILD_KEYS:
                return ("build", key)
            if key in BUILD_KEYS or key == "sysconfdir":
                return None
            return ("extra", "build", key)
        path, kind = recipe_path(sec, key)
        return path if kind == "str" else None

    def _translate(self, raw: str, section: str) -> str | None:
        out = []
        pos = 0
        for match in _REF.finditer(raw):
            path = self._ref_path(match.group(1), section)
            if path is None:
                return None
            out.append(raw[pos : match.start()])
            out.append(_ref_text(path))
            pos = match.end()
        out.append(raw[pos:])
        return "".join(out)

    def _items(self, raw: str, section: str) -> list[str] | None:
        items = []
        for word in raw.split():
            for match in _REF.finditer(word):
                path = self._ref_path(match.group(1), section)
                if path is None or path[0] != "build" or path[1] not in WORD_BUILD_KEYS:
                    return None
            translated = self._translate(word, section)
            if translated is None:
                return None
            items.append(translated)
        return items

    # -- layers -----------------------------------------------------------

    def _find_empty_merged(self) -> dict[int, list[KeyPath]]:
        """Per source, the free-form merged options it holds empty.

        The legacy builder gives every section a merged pattern matches that
        option, empty when no file adds to it; a free-form one with add keys
        is a fallback, so here only those no file adds to are left.  Written
        empty by each file with the section, until one sets a plain value.
        """
        empty: dict[int, list[KeyPath]] = {}
        plain: set[KeyPath] = set()
        for index, source in enumerate(self.sources):
            for section, options in source.sections.items():
                for pattern, option in MERGED_OPTIONS:
                    if not fnmatch.fnmatchcase(section, pattern):
                        continue
                    path, kind = recipe_path(section, option)
                    if kind != "str" or path in self.fallback or path in plain:
                        continue
                    if option in options:
                        plain.add(path)
                    else:
                        empty.setdefault(index, []).append(path)
        return empty

    def layer(self, source: Source) -> dict[str, Any]:
        """The recipe data of one INI file (fallback options left out)."""
        data: dict[str, Any] = {}
        for path in self._empty_merged.get(self.sources.index(source), []):
            set_at(data, path, "")
        for section, options in source.sections.items():
            for key, raw in options.items():
                merged = merged_option(section, key)
                if merged is not None:
                    option, op = merged
                    path, _ = recipe_path(section, option)
                    if path in self.fallback:
                        continue
                    items = self._items(raw, section) or []
                    node = node_at(data, path)
                    node.setdefault(op, []).extend(items)
                    continue
                path, kind = recipe_path(section, key)
                if path in self.fallback:
                    continue
                if kind == "list":
                    set_at(data, path, self._items(raw, section) or [])
                elif kind in ("bool", "int"):
                    cls = _model_for(path)
                    value = convert_value(
                        cls, key, raw, (section, key), lambda s, k: Origin(str(source.path))
                    )
                    set_at(data, path, value)
                else:
                    # A private option uses the secret by token; the value is under secrets.
                    translated = None if source.private else self._translate(raw, section)
                    value = token(f"{section}.{key}") if source.private else translated or raw
                    set_at(data, path, value)
                    also, value = derived(path, value, self.fallback)  # dev_pull_url → url
                    if also:
                        set_at(data, also, value)
            if source.private:
                for key, raw in options.items():
                    path = ("secrets", f"{section}.{key}", "value")
                    if merged_option(section, key) is None and path not in self.fallback:
                        translated = self._translate(raw, section)
                        set_at(data, path, raw if translated is None else translated)
        return data

    # -- fallback values ----------------------------------------------------

    def classes(self) -> list[dict[str, str]]:
        """One representative variant per combination of values the files distinguish."""
        values: dict[str, set[str]] = {attr: set() for attr in ATTRIBUTES}
        for source in self.sources:
            for attr, value in source.when.items():
                values[attr].add(value)
        choices: dict[str, list[str | None]] = {
            "product": [None, *sorted(values["product"])],
            "branch": [None, *sorted(values["branch"])],
            "arch": [None, *SUPPORTED_ARCHES],
            "platform": [None, *sorted(values["platform"])],
            "personality": [
                None, *sorted(values["personality"], key=lambda v: (personality_depth(v), v))
            ],
        }
        out = []
        for combo in itertools.product(*(choices[a] for a in ATTRIBUTES)):
            out.append({a: v for a, v in zip(ATTRIBUTES, combo, strict=True) if v is not None})
        return sorted(out, key=_specificity)

    def base_build(self) -> dict[str, str]:
        """The `[build]` values of a variant no file names (for the trusted key dirs)."""
        return self._recipe_for({})[1]

    def resolved_value(self, when: dict[str, str], path: KeyPath) -> Any:
        recipe, build = self._recipe_for(when)
        return _symbolic(get_at(recipe, path), build)

    def _recipe_for(self, when: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        key = tuple(sorted(when.items()))
        if key not in self._recipes:
            self._recipes[key] = self._resolve(when)
        return self._recipes[key]

    def _resolve(self, when: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        variant = {a: SENTINEL[a] for a in SENTINEL}
        variant.update(when)
        if "personality" in when:
            variant["personality"] = when["personality"] + SENTINEL_SUFFIX
        if "arch" not in when:
            variant["arch"] = "amd64"
        config = read_tree(
            self.config_dir,
            variant,
            localdir=self.localdir,
            sysconfdir=Path(SYSCONF_SENTINEL),
            cachedir=CACHE_SENTINEL,
            build_version=VERSION_SENTINEL,
        )
        sections = config.resolved()
        # Options get private values as tokens (revealed at run time from secrets:),
        # so no value derived from a private one is written outside secrets:.
        from eib.compat.private import masked_sections

        public, _ = masked_sections(config)
        recipe, origins = to_recipe(public, private_keys=frozenset())
        map_ostree(public, recipe, origins, lambda s, k: None)
        real, _ = to_recipe(sections, private_keys=config.private_keys())
        recipe["secrets"] = real.get("secrets", {})
        return recipe, sections["build"]


def _specificity(when: dict[str, str]) -> tuple[int, int]:
    return len(when), personality_depth(when.get("personality", ""))


def _symbolic(value: Any, build: dict[str, str]) -> Any:
    """Sentinel attribute values back into `${build:...}` references."""
    if isinstance(value, list):
        return [_symbolic(v, build) for v in value]
    if isinstance(value, dict):
        return {k: _symbolic(v, build) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    replacements = [
        (build["localdatadir"], "${build:localdatadir}"),
        (build["localdir"], "${build:localdir}"),
        (build["srcdir"], "${build:srcdir}"),
        (CACHE_SENTINEL, "${build:cachedir}"),
        (SYSCONF_SENTINEL, "${build:sysconfdir}"),
        (VERSION_SENTINEL, "${build:build_version}"),
        (build["personality"], "${build:personality}"),
        (SENTINEL["branch"], "${build:branch}"),
        (build["series"], "${build:series}"),
        (build["product"], "${build:product}"),
        (build["platform"], "${build:platform}"),
    ]
    for literal, ref in replacements:
        if literal and literal in value and ("zz9" in literal or literal.startswith("/")):
            value = value.replace(literal, ref)
    return value


def _model_for(path: KeyPath) -> Any:
    if path[0] == "flatpak" and len(path) == 4:
        return model.FlatpakRemote
    return SECTION_MODELS[path[0]]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def convert_tree(config_dir: Path, out_dir: Path, *, localdir: Path | None = None) -> list[Path]:
    """Write the YAML recipes for the tree; returns the files written."""
    config_dir = config_dir.resolve()
    if not (config_dir / "defaults.ini").is_file():
        raise UserError("not a legacy config dir (no defaults.ini)", origin=Origin(str(config_dir)))
    localdir = localdir.resolve() if localdir else None
    conv = Converter(config_dir, localdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    extends: list[str] = []
    for source in conv.sources:
        rel = Path("layers") / Path(source.label).with_suffix(".yaml")
        data = conv.layer(source)
        doc: dict[str, Any] = {"eib": 1}
        if source.when:
            doc["overlays"] = [{"when": dict(source.when), **data}]
        else:
            doc.update(data)
        header = f"# Converted by `eib convert` from {source.label}.\n"
        if source.when:
            cond = ", ".join(f"{k}={v}" for k, v in source.when.items())
            header += f"# Applies when {cond} (personality values match longer ones too).\n"
        if source.private:
            header += "# Private values: keep this file out of version control.\n"
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, header + _dump(doc), private=source.private)
        written.append(target)
        extends.append(rel.as_posix())
    public = {p: r for p, r in conv.fallback.items() if not _is_private(p, conv.private_paths)}
    private = {p: r for p, r in conv.fallback.items() if p not in public}
    if private:
        rel = Path("layers") / "private-final.yaml"
        header = (
            "# Converted by `eib convert`: final values of options fed by private files\n"
            "# (see recipe.yaml). Keep this file out of version control.\n"
        )
        doc = {"eib": 1, **fallback_doc(conv, private)}
        _write(out_dir / rel, header + _dump(doc), private=True)
        written.append(out_dir / rel)
        extends.append(rel.as_posix())
    top: dict[str, Any] = {"eib": 1, "extends": extends}
    header = (
        f"# Converted by `eib convert` from {config_dir}.\n"
        "# Each file under layers/ is one INI file; they apply in the legacy order.\n"
    )
    if conv.fallback:
        header += (
            "# These options have no layer-by-layer YAML form, so their final value is\n"
            "# written for each combination of attribute values the tree knows (below,\n"
            "# or in layers/private-final.yaml when private files feed them):\n"
        )
        for path, reason in sorted(conv.fallback.items()):
            header += f"#   {'.'.join(path)}: {reason}\n"
    if public:
        top.update(fallback_doc(conv, public))
    header += add_trusted_keys(conv, out_dir, top)
    # A legacy tree's hooks run in a buildroot unless [buildroot] enable says otherwise.
    top["build"] = {"buildroot": "auto"}
    target = out_dir / "recipe.yaml"
    target.write_text(header + _dump(top))
    written.append(target)
    return written


def _write(path: Path, text: str, *, private: bool = False) -> None:
    """Private values go only into files no one else can read (0600 from the start)."""
    if not private:
        path.write_text(text)
        return
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _is_private(path: KeyPath, private_paths: set[KeyPath]) -> bool:
    return path[0] == "secrets" or path in private_paths
