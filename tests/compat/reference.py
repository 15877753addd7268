"""A small, independent reference implementation of LEGACY-INI.md.

It leans on Python's configparser for everything it can (parsing, the
`[build]` default section, ExtendedInterpolation) so that eib's own reader,
which reimplements interpolation to name keys in errors and track private
values, is checked against the library the legacy builder used.
"""

from __future__ import annotations

import configparser
import fnmatch
import functools
import io
import itertools
from pathlib import Path

MERGED = [
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
]
ATTRS = ["product", "branch", "arch", "platform", "personality"]


def _files(d: Path, prefix: str, attrs: dict[str, str]) -> list[tuple[Path, str]]:
    parts = attrs["personality"].split("_")
    values = {a: [attrs[a]] for a in ATTRS}
    values["personality"] = ["_".join(parts[:n]) for n in range(1, len(parts) + 1)]
    out = [(d / "defaults.ini", prefix + "defaults")]
    for a in ATTRS:
        out += [(d / a / f"{v}.ini", f"{prefix}{a}_{v}") for v in values[a]]
    for a, b in itertools.combinations(ATTRS, 2):
        for v, w in itertools.product(values[a], values[b]):
            out.append((d / f"{a}-{b}" / f"{v}-{w}.ini", f"{prefix}{a}_{b}_{v}_{w}"))
    return out


def _parsed(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """A file's sections and raw items, `[DEFAULT]` being configparser's.

    `options()` lists a section's own keys, then the `[DEFAULT]` keys it does
    not set itself: "visible in every section of that file (after the
    section's own keys)".
    """
    stat = path.stat()
    return _parsed_cached(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _parsed_cached(path: Path, mtime: int, size: int) -> list[tuple[str, list[tuple[str, str]]]]:
    one = configparser.RawConfigParser()
    one.read(path)
    return [
        (sect, [(key, one.get(sect, key, raw=True)) for key in one.options(sect)])
        for sect in one.sections()
    ]


def _file_keys(sect: str, items: list[tuple[str, str]], ns: str) -> list[tuple[str, str]]:
    """(name, value) in the order they are set: every other key in file order, then the
    exact `<option>_add`/`_del` keys renamed, in table order, `_add` before `_del`."""
    exact: list[str] = []
    for pattern, opt in MERGED:
        if fnmatch.fnmatchcase(sect, pattern):
            exact += [opt + "_add", opt + "_del"]
    values = dict(items)
    out = [(key, value) for key, value in items if key not in exact]
    out += [(f"{key}_{ns}", values[key]) for key in exact if key in values]
    return out


def reference_show_config(
    config_dir: Path,
    build: dict[str, str],
    *,
    localdir: Path | None,
    sysconfdir: Path,
    resolved: bool = False,
) -> str:
    """What `--show-config` prints; `build` is the complete [build] section."""
    cp = configparser.ConfigParser(
        interpolation=configparser.ExtendedInterpolation(), default_section="build"
    )
    cp.read_dict({"build": build})
    order: dict[str, list[str]] = {"build": list(build)}
    private: set[tuple[str, str]] = set()
    private_sections: set[str] = set()
    public = [*_files(config_dir, "", build), (sysconfdir / "config.ini", "system_config")]
    if localdir:
        public += _files(localdir / "config", "local_", build)
    public.append((config_dir / "local.ini", "local"))
    secret = [(sysconfdir / "private.ini", "system_private")]
    if localdir:
        secret.append((localdir / "config" / "private.ini", "local_private"))
    secret.append((config_dir / "private.ini", "private"))
    for (path, ns), is_private in [(f, False) for f in public] + [(f, True) for f in secret]:
        if not path.exists():
            continue
        for sect, items in _parsed(path):
            if sect != "build" and not cp.has_section(sect):
                cp.add_section(sect)
                order[sect] = []
                if is_private:
                    private_sections.add(sect)
            for name, value in _file_keys(sect, items, ns):
                cp.set(sect, name, value)
                if name not in order[sect]:
                    order[sect].append(name)
                if is_private:
                    private.add((sect, name))
                else:
                    private.discard((sect, name))
    shown_merged: dict[tuple[str, str], str] = {}
    for pattern, opt in MERGED:
        for sect in fnmatch.filter(cp.sections(), pattern):
            adds = [k for k in order[sect] if fnmatch.fnmatchcase(k, opt + "_add*")]
            dels = [k for k in order[sect] if fnmatch.fnmatchcase(k, opt + "_del*")]
            if opt not in order[sect]:
                every: dict[str, int] = {}
                visible: dict[str, int] = {}
                for keys, sign in ((adds, 1), (dels, -1)):
                    for k in keys:
                        for v in cp.get(sect, k).split():
                            every[v] = every.get(v, 0) + sign
                            if (sect, k) not in private:
                                visible[v] = visible.get(v, 0) + sign
                cp.set(sect, opt, "\n".join(v for v, c in every.items() if c > 0))
                order[sect].append(opt)
                shown_merged[(sect, opt)] = "\n".join(v for v, c in visible.items() if c > 0)
            for k in adds + dels:
                cp.remove_option(sect, k)
                order[sect].remove(k)
    out = configparser.RawConfigParser(default_section="build")
    data: dict[str, dict[str, str]] = {}
    for sect, keys in order.items():
        if sect in private_sections:
            continue
        data[sect] = {}
        for k in keys:
            if (sect, k) in private:
                continue
            if (sect, k) in shown_merged:
                data[sect][k] = shown_merged[(sect, k)]
            elif resolved:
                data[sect][k] = cp.get(sect, k)
            else:
                data[sect][k] = cp.get(sect, k, raw=True)
    out.read_dict(data)
    text = io.StringIO()
    out.write(text)
    return text.getvalue()
