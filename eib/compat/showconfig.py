"""The merged public configuration printed as INI, like the legacy `--show-config`.

The layout is configparser's `write()`: `[build]` first, then sections in the
order they were first read, `key = value`, continuation lines indented with a
tab and a blank line after every section. Private values never appear.
"""

from __future__ import annotations

from eib.compat.interpolate import BUILD
from eib.compat.reader import LegacyConfig
from eib.model.plan import REDACTED


def public_sections(config: LegacyConfig, *, resolved: bool = False) -> dict[str, dict[str, str]]:
    """The config as it may be shown: private keys absent, private-derived values redacted."""
    hidden = config.hidden_keys()
    out: dict[str, dict[str, str]] = {}
    for section, entries in config.sections.items():
        if section in config.private_sections:
            continue
        shown: dict[str, str] = {}
        for key, entry in entries.items():
            if entry.private:
                continue
            if entry.merged:
                shown[key] = REDACTED if entry.public_value is None else entry.public_value
                continue
            if not resolved:
                shown[key] = entry.value
                continue
            expanded = config.expanded(section, key)
            shown[key] = REDACTED if expanded.reads & hidden else expanded.value
        out[section] = shown
    return out


def format_ini(sections: dict[str, dict[str, str]]) -> str:
    """configparser `write()` output for these sections (`[build]` first)."""
    order = [BUILD, *[s for s in sections if s != BUILD]] if BUILD in sections else list(sections)
    lines: list[str] = []
    for section in order:
        lines.append(f"[{section}]\n")
        for key, value in sections[section].items():
            lines.append(f"{key} = {value.replace(chr(10), chr(10) + chr(9))}\n")
        lines.append("\n")
    return "".join(lines)


def show_config(config: LegacyConfig, *, resolved: bool = False) -> str:
    return format_ini(public_sections(config, resolved=resolved))
