"""The OS pull settings of a converted tree: renamed `[ostree]` keys and the trusted keys.

A legacy tree plans with `dev_pull_url` as `ostree.url`, `prod_pull_url` as
`ostree.prod_url` and `enable_p2p_updates` as `ostree.p2p` (`eib.compat.ostree`),
and trusts every `*.asc` of `${build:datadir}/keys` and
`${build:localdatadir}/keys`.  `eib convert` writes the same: each layer that
sets a legacy key also sets the recipe field (the legacy key stays under
`extra.ostree` for hooks), and `recipe.yaml` lists the key files found,
relative to itself when they are in the checkout or beside it.

When the layers cannot say it one by one (the tree also sets the recipe
field itself, a reference with no YAML form, a key dir that depends on the
variant), the field is written as its final value per variant instead,
like any other option of that kind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from eib.compat.convert_sources import Source
from eib.compat.ostree import RENAMED, trusted_keys

KeyPath = tuple[str, ...]
GPG_KEYS: KeyPath = ("ostree", "gpg_keys")
TRUE_WORDS = ("1", "yes", "true", "on")
# legacy key's place in a converted layer → the recipe field it also sets
DERIVED: dict[KeyPath, KeyPath] = {
    ("extra", "ostree", old): ("ostree", new) for old, new in RENAMED.items()
}


class ConverterView(Protocol):
    """What these functions need of `eib.compat.convert.Converter`."""

    sources: list[Source]
    fallback: dict[KeyPath, str]
    private_paths: set[KeyPath]
    defined: dict[str, set[str]]

    def base_build(self) -> Mapping[str, str]: ...


def find_ostree_fallbacks(conv: ConverterView) -> None:
    """Mark the pull fields the layers cannot write one by one."""
    ostree = conv.defined.get("ostree", set())
    for source_path, target in DERIVED.items():
        old, new = source_path[-1], target[-1]
        if old not in ostree:
            continue
        if source_path in conv.private_paths:
            conv.private_paths.add(target)
        if new in ostree:
            conv.fallback[target] = f"[ostree] {new} and {old} are both set"
        elif source_path in conv.fallback:
            conv.fallback[target] = conv.fallback[source_path]
        elif new == "p2p" and (target in conv.private_paths or _has_reference(conv, old)):
            conv.fallback[target] = f"[ostree] {old}: private or a reference, not a boolean"
    if "gpg_keys" in ostree:
        if any(_sets(s, "ostree", "gpg_keys") and (s.when or s.private) for s in conv.sources):
            conv.fallback[GPG_KEYS] = "[ostree] gpg_keys is set for some variants only"
    elif any(_sets(s, "build", "datadir") and (s.when or s.private) for s in conv.sources):
        conv.fallback[GPG_KEYS] = "[build] datadir (the trusted keys' dir) depends on the variant"
    elif "zz9" in conv.base_build().get("datadir", ""):
        conv.fallback[GPG_KEYS] = "[build] datadir (the trusted keys' dir) names a variant"


def derived(path: KeyPath, value: Any, fallback: Mapping[KeyPath, str]) -> tuple[KeyPath, Any]:
    """The recipe field a layer also sets with a legacy key's value, or `((), None)`."""
    target = DERIVED.get(path)
    if target is None or target in fallback:
        return (), None
    if target[-1] == "p2p" and isinstance(value, str):
        return target, value.strip().lower() in TRUE_WORDS
    return target, value


def add_trusted_keys(conv: ConverterView, out_dir: Path, top: dict[str, Any]) -> str:
    """Set the trusted keys in `top` (recipe.yaml in `out_dir`); returns its header line."""
    if GPG_KEYS in conv.fallback or "gpg_keys" in conv.defined.get("ostree", set()):
        return ""
    out_dir = out_dir.resolve()
    keys = [_relative(Path(key), out_dir) for key in trusted_keys(conv.base_build())]
    if not keys:
        return ""
    ostree = top.setdefault("ostree", {})
    ostree["gpg_keys"] = keys
    return "# ostree.gpg_keys: the *.asc files found in the datadir and localdatadir keys/.\n"


def _relative(key: Path, out_dir: Path) -> str:
    """Relative to the recipe for a key in the checkout or a dir beside it, else absolute."""
    if key.is_relative_to(out_dir.parent) and out_dir.parent != Path(out_dir.anchor):
        return os.path.relpath(key, out_dir)
    return str(key)


def _sets(source: Source, section: str, key: str) -> bool:
    return key in source.sections.get(section, {})


def _has_reference(conv: ConverterView, key: str) -> bool:
    return any("${" in s.sections.get("ostree", {}).get(key, "") for s in conv.sources)
