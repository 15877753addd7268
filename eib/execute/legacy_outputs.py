"""Output files the legacy builder published beside the images.

Download pages, installers and release scripts read them by name:
`<outversion>.ostree.txt` (which OS commit the image holds),
`<outversion>.config.ini` (the public configuration the build used), the
`.size` file of each image (its extracted size), and the
`user.eos-image-version` attribute naming the image a file came from.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

from eib.envnames import env_name, env_value
from eib.model.plan import REDACTED, Plan
from eib.model.recipe import HOOK_GROUPS
from eib.secrets.tokens import names_in
from eib.tools import ostree

log = logging.getLogger("eib.execute.legacy_outputs")

VERSION_XATTR = "user.eos-image-version"


def ostree_txt_name(plan: Plan) -> str:
    return f"{plan.outputs.outversion}.ostree.txt"


def config_ini_name(plan: Plan) -> str:
    return f"{plan.outputs.outversion}.config.ini"


def ostree_txt(repo: Path, branch: str, commit: str) -> str:
    """`Branch <ref>` and `ostree show` of the deployed commit, as the legacy file had."""
    shown = ostree.ostree(["show", f"--repo={repo}", commit]).stdout
    return f"Branch {branch}\n{shown}"


def write_ostree_txt(plan: Plan, sysroot: Path, commit: str, output: Path) -> Path:
    dest = output / ostree_txt_name(plan)
    _write_atomic(dest, ostree_txt(sysroot / "ostree" / "repo", plan.ostree.ref, commit))
    return dest


def write_size(path: Path, size: int) -> Path:
    """`<path>.size`: a byte count and a newline."""
    dest = path.with_name(path.name + ".size")
    _write_atomic(dest, f"{size}\n")
    return dest


def tag_version(path: Path, outversion: str) -> None:
    """Mark an output file with the image version, where the file system allows it.

    The attribute travels with local copies (`cp -a`, rsync -X); an output
    dir on a file system without user attributes only loses that.
    """
    try:
        os.setxattr(path, VERSION_XATTR, outversion.encode())
    except OSError as err:
        if err.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise
        log.info("%s: the file system keeps no %s attribute", path.name, VERSION_XATTR)


def public_sections(plan: Plan) -> dict[str, dict[str, Any]]:
    """The plan's configuration in legacy INI sections, private values redacted.

    The plan holds no secret value, only `<secret:NAME>` tokens; an option
    holding one, or fed by a private value, shows as `<redacted>`, as
    `show-config` shows it.
    """
    dump = plan.model_dump(mode="json")
    sections: dict[str, dict[str, Any]] = {"build": dict(dump["build"])}
    for name in ("ostree", "image", "demo"):
        sections[name] = dict(dump[name])
    flatpak = dict(dump["flatpak"])
    remotes = flatpak.pop("remotes", {})
    sections["flatpak"] = flatpak
    for remote, options in sorted(remotes.items()):
        sections[f"flatpak-remote-{remote}"] = dict(options)
    for group in HOOK_GROUPS:
        sections.setdefault(group, {})["hooks"] = [h.name for h in plan.hooks_of(group)]
    sections.setdefault("publish", {})["path"] = dump["publish"]["path"]
    for name, options in dump["extra"].items():
        sections.setdefault(name, {}).update(options)
    for section, options in sections.items():
        for key, value in options.items():
            if plan.env.get(env_name(section, key)) == REDACTED or _holds_token(value):
                options[key] = REDACTED
    return sections


def _holds_token(value: Any) -> bool:
    """A value built from a secret: shown as `<redacted>`, as `show-config` shows it."""
    if isinstance(value, list):
        return any(_holds_token(v) for v in value)
    return isinstance(value, str) and bool(names_in(value))


def config_ini(plan: Plan) -> str:
    """`# Configuration for <outversion>` and configparser's layout of the sections.

    Keys are lower case, lists one value per line, continuation lines
    indented with a tab, `[build]` first; nested values (none in a legacy
    tree) are left out, as they have no INI form.
    """
    lines = [f"# Configuration for {plan.outputs.outversion}\n"]
    for section, options in public_sections(plan).items():
        lines.append(f"[{section}]\n")
        for key, value in options.items():
            if isinstance(value, dict) or (isinstance(value, list) and
                                           any(isinstance(v, dict | list) for v in value)):
                continue
            text = "" if value is None else env_value(value)
            lines.append(f"{key.lower()} = {text.replace(chr(10), chr(10) + chr(9))}\n")
        lines.append("\n")
    return "".join(lines)


def write_config_ini(plan: Plan, output: Path, scrub: Any = None) -> Path:
    """Write `<outversion>.config.ini`; `scrub` removes any secret value that slipped in."""
    text = config_ini(plan)
    dest = output / config_ini_name(plan)
    _write_atomic(dest, scrub(text) if scrub else text)
    return dest


def _write_atomic(dest: Path, text: str) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(dest)
