"""From a top recipe file to the ordered layers of one variant.

Order: each file of the `extends` chain (depth first, a file's own extends
before it), and for each file its body, then its overlays whose `when:`
matches the variant, in the order written.  This mirrors the legacy tree,
where the builder's defaults and per-attribute files come before the
localdir's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from eib.errors import Origin, UserError, did_you_mean
from eib.load.yamlfile import KeyPath, NotARecipe, YamlDoc, load_yaml
from eib.model.recipe import KNOWN_SECTIONS, BuildSettings
from eib.variant import check_variant_value, host_arch, series_of

VARIANT_ATTRS = ("product", "branch", "arch", "platform", "personality")
WHEN_ATTRS = (*VARIANT_ATTRS, "series")
FILE_KEYS = ("eib", "extends", "variant", "overlays")
# What a section name may be: `${section:key}` references and the legacy
# `EIB_<SECTION>_<KEY>` variables need a plain word.
SECTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
VARIANT_DEFAULTS = {"product": "eoscustom", "branch": "master", "personality": "base"}


class Layer(NamedTuple):
    """One slice of configuration: a file's body or one of its overlays."""

    label: str
    doc: YamlDoc
    data: dict[str, Any]
    origin_prefix: KeyPath


def collect_files(top: Path) -> list[YamlDoc]:
    """The files of the extends chain of `top`, in application order."""
    order: list[YamlDoc] = []
    seen: set[Path] = set()

    def visit(path: Path, stack: tuple[Path, ...], origin: Origin | None) -> None:
        real = path.resolve()
        if real in stack:
            chain = " → ".join(str(p) for p in (*stack, real))
            raise UserError(f"extends cycle: {chain}", origin=origin, key="extends")
        if real in seen:
            return
        if origin is not None and not real.exists():
            raise UserError(f"extended file not found: {path}", origin=origin, key="extends")
        try:
            doc = load_yaml(real)
            check_file_keys(doc)
        except NotARecipe as err:
            if origin is None:
                raise
            # Named where the mistake is: the extends entry that picked this file.
            raise UserError(f"{err.origin}: {err.message}", origin=origin, key="extends") from None
        extends = doc.data.get("extends", [])
        if isinstance(extends, str):
            extends = [extends]
        if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
            raise UserError(
                "expected a list of file names", origin=doc.origin(("extends",)), key="extends"
            )
        for index, name in enumerate(extends):
            visit(real.parent / name, (*stack, real), doc.origin(("extends", index)))
        seen.add(real)
        order.append(doc)

    if not top.exists():
        raise UserError("recipe not found", origin=Origin(str(top)))
    visit(top, (), None)
    return order


def check_file_keys(doc: YamlDoc) -> None:
    """Reject what cannot be a section: typos of known ones, non-mappings."""
    version = doc.data.get("eib", 1)
    if version != 1:
        raise UserError(
            f"unsupported recipe format {version!r} (this eib reads format 1)",
            origin=doc.origin(("eib",)),
            key="eib",
        )
    for key, value in doc.data.items():
        if key in FILE_KEYS:
            continue
        check_section(key, value, doc, (key,))
    overlays = doc.data.get("overlays", [])
    if not isinstance(overlays, list):
        raise UserError(
            "expected a list of {when: ..., <sections>}",
            origin=doc.origin(("overlays",)),
            key="overlays",
        )
    for index, overlay in enumerate(overlays):
        opath: KeyPath = ("overlays", index)
        if not isinstance(overlay, dict) or "when" not in overlay:
            raise UserError(
                "an overlay is a mapping with a 'when:' condition",
                origin=doc.origin(opath),
                key=f"overlays[{index}]",
            )
        check_when(overlay["when"], doc, (*opath, "when"))
        for key, value in overlay.items():
            if key == "when":
                continue
            if key in FILE_KEYS:
                raise UserError(
                    f"'{key}' is not allowed inside an overlay",
                    origin=doc.origin((*opath, key)),
                    key=f"overlays[{index}].{key}",
                )
            check_section(key, value, doc, (*opath, key))


def check_build(value: Any, doc: YamlDoc, path: KeyPath) -> None:
    """`build:` holds only how the build runs; the rest of it is derived from the variant."""
    allowed = tuple(BuildSettings.model_fields)
    keys = list(value) if isinstance(value, dict) else [None]
    for key in keys:
        if key not in allowed:
            where = (*path, key) if isinstance(key, str) else path
            raise UserError(
                "the build section is derived; set the variant's attributes under 'variant:' "
                f"(a recipe may set only {', '.join(f'build.{k}' for k in allowed)})",
                origin=doc.origin(where),
                key="build",
            )


def check_section(key: str, value: Any, doc: YamlDoc, path: KeyPath) -> None:
    """A known section, or a plausible name of one a hook reads, mapped to its keys."""
    if key == "build":
        check_build(value, doc, path)
        return
    if key not in KNOWN_SECTIONS and not SECTION_NAME.fullmatch(key):
        # Not echoed: the file may not be a recipe at all (extends: [/etc/shadow]).
        raise NotARecipe(
            "not a recipe: the key on this line is not a section name "
            "(letters, digits, '_', '-' and '.')",
            origin=doc.origin(path),
        )
    if key not in KNOWN_SECTIONS:
        hint = did_you_mean(key, [*KNOWN_SECTIONS, *FILE_KEYS])
        if hint is not None:
            raise UserError(f"unknown section '{key}'", origin=doc.origin(path), key=key, hint=hint)
    if value is not None and not isinstance(value, dict):
        raise UserError(
            f"a section must be a mapping of keys, got {type(value).__name__} {value!r}",
            origin=doc.origin(path),
            key=key,
        )


def check_when(when: Any, doc: YamlDoc, path: KeyPath) -> None:
    if not isinstance(when, dict) or not when:
        raise UserError(
            "'when' must map variant attributes to a value or a list of values",
            origin=doc.origin(path),
            key="when",
        )
    for attr, value in when.items():
        if attr not in WHEN_ATTRS:
            raise UserError(
                f"unknown variant attribute '{attr}' (one of {', '.join(WHEN_ATTRS)})",
                origin=doc.origin((*path, attr)),
                key="when",
                hint=did_you_mean(str(attr), WHEN_ATTRS),
            )
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            raise UserError(
                f"'when: {attr}' takes a string or a list of strings, got {value!r}",
                origin=doc.origin((*path, attr)),
                key=f"when.{attr}",
            )


def resolve_variant(docs: list[YamlDoc], given: dict[str, str]) -> dict[str, str]:
    """Defaults ← every file's `variant:` in order ← the command line.

    Each value is checked where it was written: a file's at its line, the
    command line's as the option (`--arch`) that gave it.
    """
    variant: dict[str, str] = dict(VARIANT_DEFAULTS)
    for doc in docs:
        section = doc.data.get("variant") or {}
        if not isinstance(section, dict):
            raise UserError("expected a mapping", origin=doc.origin(("variant",)), key="variant")
        for key, value in section.items():
            origin = doc.origin(("variant", key))
            if key not in VARIANT_ATTRS:
                raise UserError(
                    f"unknown variant attribute '{key}'",
                    origin=origin,
                    key=f"variant.{key}",
                    hint=did_you_mean(str(key), VARIANT_ATTRS),
                )
            if not isinstance(value, str):
                raise UserError(
                    f"expected a string, got {value!r}", origin=origin, key=f"variant.{key}"
                )
            if key not in given:
                check_variant_value(key, value, origin=origin, key=f"variant.{key}")
            variant[key] = value
    for key, value in given.items():
        check_variant_value(key, value, key=f"--{key}")
    variant.update(given)
    if "arch" not in variant:
        variant["arch"] = host_arch()
    variant.setdefault("platform", variant["arch"])
    variant["series"] = series_of(variant["branch"])
    return variant


def when_matches(when: dict[str, Any], variant: dict[str, str]) -> bool:
    """All attributes match; a personality value also matches its longer forms."""
    for attr, value in when.items():
        values = value if isinstance(value, list) else [value]
        actual = variant[attr]
        if attr == "personality":
            ok = any(actual == v or actual.startswith(v + "_") for v in values)
        else:
            ok = actual in values
        if not ok:
            return False
    return True


def select_layers(docs: list[YamlDoc], variant: dict[str, str]) -> list[Layer]:
    layers: list[Layer] = []
    for doc in docs:
        body = {k: v for k, v in doc.data.items() if k not in FILE_KEYS and v is not None}
        layers.append(Layer(str(doc.path), doc, body, ()))
        for index, overlay in enumerate(doc.data.get("overlays", [])):
            if when_matches(overlay["when"], variant):
                cond = ", ".join(f"{k}={v}" for k, v in overlay["when"].items())
                line = doc.origin(("overlays", index)).line
                data = {k: v for k, v in overlay.items() if k != "when" and v is not None}
                layers.append(
                    Layer(f"{doc.path}:{line} (when {cond})", doc, data, ("overlays", index))
                )
    return layers
