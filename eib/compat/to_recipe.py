"""One call that turns a legacy tree into everything the compiler needs.

`eib plan config/ …` and `eib run config/ …` reach here through the compiler
when the recipe path is a directory holding `defaults.ini`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eib.compat.env import legacy_env
from eib.compat.mapping import to_recipe
from eib.compat.ostree import map_ostree
from eib.compat.reader import LegacyConfig, read_tree
from eib.compat.schema import check_schema, schema_files
from eib.envnames import env_name
from eib.errors import Origin
from eib.model.plan import SecretRef


@dataclass(frozen=True)
class LegacyResult:
    """A legacy tree read for one variant.

    `sections` holds expanded values including private ones; `private_keys`
    names the (section, key) pairs to redact wherever values are shown, and
    `private_env` the matching `EIB_*` names. `recipe` is the raw recipe dict
    (private values stay in their section and are also listed under
    `secrets` as `section.key`), `recipe_origins` the INI file:line of each of
    its key paths, `env` the `EIB_*` environment with private values in clear.
    """

    config_dir: Path
    config: LegacyConfig
    sections: dict[str, dict[str, str]]
    origins: dict[tuple[str, str], Origin]
    private_keys: frozenset[tuple[str, str]]
    private_env: frozenset[str]
    files: list[str]
    recipe: dict[str, Any]
    recipe_origins: dict[tuple[str | int, ...], Origin]
    env: dict[str, str]
    # With `masked`: private values are `<secret:...>` tokens in `recipe`, and these
    # references say where the build finds them.
    secret_refs: list[SecretRef] = field(default_factory=list)


def is_legacy_tree(path: Path) -> bool:
    """A directory holding `defaults.ini` is a legacy config dir."""
    return path.is_dir() and (path / "defaults.ini").is_file()


def load_legacy_tree(
    config_dir: Path,
    variant: dict[str, str],
    *,
    localdir: Path | None = None,
    sysconfdir: Path | None = None,
    srcdir: Path | None = None,
    cachedir: Path | str | None = None,
    build_version: str | None = None,
    check: bool = True,
    masked: bool = False,
) -> LegacyResult:
    """Read, merge, schema-check and map the tree (see LEGACY-INI.md)."""
    config = read_tree(
        config_dir,
        variant,
        localdir=localdir,
        sysconfdir=sysconfdir,
        srcdir=srcdir,
        cachedir=cachedir,
        build_version=build_version,
    )
    sections = config.resolved()
    if check:
        check_schema(
            config,
            schema_files(config_dir.resolve(), localdir.resolve() if localdir else None),
            srcdir=Path(sections["build"]["srcdir"]),
        )
    private = config.private_keys()
    refs: list[SecretRef] = []
    if masked:
        from eib.compat.private import masked_sections

        public, refs = masked_sections(config)
        recipe, origins = to_recipe(public, private_keys=frozenset(), origin_of=config.origin_of)
        # Private values stay tokens in what the ostree mapping copies, too.
        map_ostree(public, recipe, origins, config.origin_of)
    else:
        recipe, origins = to_recipe(sections, private_keys=private, origin_of=config.origin_of)
        map_ostree(sections, recipe, origins, config.origin_of)
    recipe_origins: dict[tuple[str | int, ...], Origin] = dict(origins.items())
    return LegacyResult(
        config_dir=config_dir.resolve(),
        config=config,
        sections=sections,
        origins=config.origins(),
        private_keys=private,
        private_env=frozenset(env_name(s, k) for s, k in config.hidden_keys()),
        files=[str(p) for p in config.files],
        recipe=recipe,
        recipe_origins=recipe_origins,
        env=legacy_env(config),
        secret_refs=refs,
    )
