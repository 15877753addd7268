"""Random legacy trees: eib's merged config equals the configparser reference.

Each tree is drawn from a seeded generator: `[DEFAULT]` sections, attribute
and attribute-pair files (personality prefixes included), a local settings
dir, private files, and merged-list keys of every shape LEGACY-INI.md names:
exact `_add`/`_del` keys, suffixed ones (`hooks_add_extra`), `hooks_added`
and `hooks_delx` globs, duplicates, plain options that win, and values that
interpolate `[build]` keys.  Both the raw and the expanded `show-config`
output must be identical for every tree.
"""

from __future__ import annotations

import random
from pathlib import Path

from eib.compat.reader import read_tree
from eib.compat.showconfig import show_config

from .conftest import BUILD_VERSION
from .reference import reference_show_config

SEED = 20240611
TREES = 300
ITEMS = ["a", "b", "c", "d", "e", "${product}", "${arch}-x"]
SECTIONS = {
    "image": ["hooks", "settings", "settings_locks", "icon_grid"],
    "content": ["hooks"],
    "flatpak-remote-eos": ["apps", "runtimes", "exclude", "allow_extra_data"],
    "flatpak-remote-other": ["apps", "runtimes"],
    "kolibri-one": ["include_node_ids", "exclude_node_ids"],
    "misc": ["hooks"],  # not a merged section: its add keys are plain keys
}
SUFFIXES = ["_add", "_del", "_add", "_add_extra", "_add_mandatory", "_added", "_del_x", "_delx"]
VARIANT = {
    "product": ["eos", "eosdev"],
    "branch": ["master", "eos5.1"],
    "arch": ["amd64", "arm64"],
    "personality": ["base", "es", "es_GT"],
}


def _value(rng: random.Random) -> str:
    return " ".join(rng.choice(ITEMS) for _ in range(rng.randint(0, 4)))


def _section_text(rng: random.Random, options: list[str], *, private: bool) -> list[str]:
    lines = []
    for _ in range(rng.randint(1, 5)):
        option = rng.choice(options)
        if rng.random() < 0.06:
            lines.append(f"{option} = {_value(rng)}")  # the plain option wins
        else:
            lines.append(f"{option}{rng.choice(SUFFIXES)} = {_value(rng)}")
    if not private and rng.random() < 0.3:
        lines.append(f"plain{rng.randint(0, 3)} = ${{branch}} {rng.choice(ITEMS)}")
    if private and rng.random() < 0.5:
        lines.append(f"secret{rng.randint(0, 2)} = s{rng.randint(0, 99)}")
    # configparser refuses a key set twice in one section of one file.
    return list({line.split(" = ")[0]: line for line in lines}.values())


def _ini(rng: random.Random, *, private: bool = False) -> str:
    parts = []
    if rng.random() < 0.3:
        parts += ["[DEFAULT]", *_section_text(rng, ["hooks", "apps"], private=private), ""]
    for section in rng.sample(sorted(SECTIONS), rng.randint(1, 3)):
        parts += [f"[{section}]", *_section_text(rng, SECTIONS[section], private=private), ""]
    return "\n".join(parts)


def _candidate_files(variant: dict[str, str]) -> list[str]:
    es = ["es", "es_GT"] if variant["personality"].startswith("es") else ["base"]
    product, branch, arch = variant["product"], variant["branch"], variant["arch"]
    names = [
        "defaults.ini",
        f"product/{product}.ini",
        f"branch/{branch}.ini",
        f"arch/{arch}.ini",
        f"platform/{arch}.ini",
        f"product-arch/{product}-{arch}.ini",
        f"branch-platform/{branch}-{arch}.ini",
    ]
    for personality in es:
        names += [
            f"personality/{personality}.ini",
            f"product-personality/{product}-{personality}.ini",
            f"arch-personality/{arch}-{personality}.ini",
        ]
    return names


def _write_tree(root: Path, rng: random.Random, variant: dict[str, str]) -> Path | None:
    """Write one random tree below `root`; return its localdir (or None)."""
    localdir = root / "local" if rng.random() < 0.6 else None
    dirs = [root / "config"] + ([localdir / "config"] if localdir else [])
    for config in dirs:
        for name in _candidate_files(variant):
            if name == "defaults.ini" or rng.random() < 0.4:
                path = config / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(_ini(rng))
    (root / "sysconf").mkdir(exist_ok=True)
    files = {root / "config" / "local.ini": False, root / "sysconf" / "config.ini": False,
             root / "sysconf" / "private.ini": True, root / "config" / "private.ini": True}
    if localdir:
        files[localdir / "config" / "private.ini"] = True
    for path, private in files.items():
        if rng.random() < 0.35:
            path.write_text(_ini(rng, private=private))
    return localdir


def _build(variant: dict[str, str], root: Path, localdir: Path | None) -> dict[str, str]:
    return {
        **{attr: variant[attr] for attr in ("product", "branch", "arch")},
        "platform": variant["arch"],
        "personality": variant["personality"],
        "series": variant["branch"].rsplit(".", 1)[0],
        "build_version": BUILD_VERSION,
        "srcdir": str(root),
        "cachedir": "/var/cache/eib",
        "sysconfdir": str(root / "sysconf"),
        "localdir": str(localdir) if localdir else "",
        "localdatadir": str(localdir / "data") if localdir else "",
    }


def test_random_trees_match_the_reference(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    differences = []
    for number in range(TREES):
        root = tmp_path / f"t{number}"
        variant = {attr: rng.choice(values) for attr, values in VARIANT.items()}
        localdir = _write_tree(root, rng, variant)
        config = read_tree(
            root / "config", variant, localdir=localdir, sysconfdir=root / "sysconf",
            build_version=BUILD_VERSION,
        )
        build = _build(variant, root, localdir)
        for resolved in (False, True):
            ours = show_config(config, resolved=resolved)
            theirs = reference_show_config(
                root / "config", build, localdir=localdir, sysconfdir=root / "sysconf",
                resolved=resolved,
            )
            if ours != theirs:
                differences.append((number, resolved, ours, theirs))
    assert not differences, (
        f"{len(differences)} of {2 * TREES} outputs differ; first: tree {differences[0][0]}"
        f"\n--- eib\n{differences[0][2]}\n--- reference\n{differences[0][3]}"
    )


def test_the_generator_covers_every_rule(tmp_path: Path) -> None:
    """The trees really contain what the differential is meant to exercise."""
    rng = random.Random(SEED)
    text = ""
    for number in range(TREES):
        root = tmp_path / f"t{number}"
        variant = {attr: rng.choice(values) for attr, values in VARIANT.items()}
        _write_tree(root, rng, variant)
        text += "".join(p.read_text() for p in root.rglob("*.ini"))
    for needle in ("[DEFAULT]", "hooks_add =", "hooks_added", "_delx", "_add_extra", "secret"):
        assert needle in text, needle
