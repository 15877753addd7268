"""The `EIB_*` environment of a typed recipe (names and values: `eib.envnames`).

YAML sections map onto the legacy section names (`hooks.image` is
`[image] hooks`, `flatpak.remotes.X` is `[flatpak-remote-X]`) so a legacy
hook finds the same variables whichever format the recipe is in.

Everything here is a fact of the plan, fixed when it is compiled; the paths
only known while building (work, cache and output dirs, the deployment) are
added by the executor (`eib.execute.hookenv`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eib.envnames import env_name, env_value
from eib.model.recipe import Recipe
from eib.secrets.tokens import token


def sections_env(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Legacy-named variables for INI-shaped sections (section → option → value)."""
    env: dict[str, str] = {}
    for section, options in sections.items():
        for option, value in options.items():
            if isinstance(value, dict):
                continue
            env[env_name(section, option)] = env_value(value)
    return env


def legacy_sections(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The recipe seen as legacy INI sections (what hooks were written against)."""
    dump = recipe.model_dump(mode="json")
    sections: dict[str, dict[str, Any]] = {}
    # How the build runs is no option hooks read (a legacy tree's [buildroot] stays as it was).
    sections["build"] = {k: v for k, v in dump["build"].items()
                         if k not in ("buildroot", "buildroot_mounts")}
    for name in ("ostree", "image", "demo"):
        sections[name] = dict(dump[name])
    flatpak = dict(dump["flatpak"])
    remotes = flatpak.pop("remotes")
    sections["flatpak"] = flatpak
    for remote, options in remotes.items():
        sections[f"flatpak-remote-{remote}"] = options
    for group, names in dump["hooks"].items():
        if group != "pass_env":
            sections.setdefault(group, {})["hooks"] = names
    sections.setdefault("publish", {})["path"] = dump["publish"]["path"]
    sections["secrets"] = {
        name: (token(name) if s["value"] is not None or s["env"] or s["key"] else s["file"])
        for name, s in dump["secrets"].items()
    }
    for name, options in dump["extra"].items():
        sections.setdefault(name, {}).update(options)
    _legacy_facts(recipe, sections)
    # An option with no value is not set at all, as in a legacy tree that leaves it
    # out: its hooks read `prio` with getint(fallback=None), which fails on ''.
    return {name: {k: v for k, v in options.items() if v is not None}
            for name, options in sections.items()}


def _legacy_facts(recipe: Recipe, sections: dict[str, dict[str, Any]]) -> None:
    """Options the legacy builder's own config always had, derived where the recipe lacks them.

    Hooks test `EIB_PUBLISH_S3_BUCKET` to decide whether to upload and pass
    `EIB_SSH_OPTIONS` to ssh; an INI tree's `s3_bucket` became a publish
    target, so the first S3 target gives them back.
    """
    build = sections["build"]
    sysconfdir = build.get("sysconfdir") or "/etc/eos-image-builder"
    build.setdefault("ssh_options", f"-i {sysconfdir}/ssh-key.pem -o StrictHostKeyChecking=no")
    if build.get("srcdir"):
        build.setdefault("helpersdir", f"{build['srcdir']}/helpers")
        build.setdefault("datadir", f"{build['srcdir']}/data")
    s3 = next((t for t in recipe.publish.targets if t.kind == "s3"), None)
    publish = sections.setdefault("publish", {})
    publish.setdefault("s3_bucket", getattr(s3, "bucket", ""))
    publish.setdefault("s3_region", getattr(s3, "region", ""))


def hook_view(planned: Recipe, written: Recipe) -> Recipe:
    """The recipe as hooks see it: the plan's values, but each remote's `repo_file` as
    written.  eib folds that file into the remote; a checkout's own Flatpak library
    reads the file itself (its GPGKey is the only key it takes), as it always did."""
    remotes = {
        name: remote.model_copy(update={"repo_file": written.flatpak.remotes[name].repo_file})
        for name, remote in planned.flatpak.remotes.items()
    }
    return planned.model_copy(
        update={"flatpak": planned.flatpak.model_copy(update={"remotes": remotes})})


def config_sections(recipe: Recipe, tokens: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The merged config as INI text values, for `EIB_TMPCONFIG`/`EIB_TMPFULLCONFIG`.

    `tokens` maps a variable name to the secret token standing for its value,
    so a private option is a token here exactly as it is in the environment.
    """
    config: dict[str, dict[str, str]] = {}
    for section, options in legacy_sections(recipe).items():
        values = {
            option: tokens.get(env_name(section, option), env_value(value))
            for option, value in options.items()
            if not isinstance(value, dict)
        }
        config[section] = dict(sorted(values.items()))
    return config


def recipe_env(recipe: Recipe, outversion: str = "") -> dict[str, str]:
    """Every option as a variable, plus the plan facts legacy hooks read (`EIB_OUTVERSION`)."""
    env = sections_env(legacy_sections(recipe))
    if outversion:
        env["EIB_OUTVERSION"] = outversion
    return dict(sorted(env.items()))
