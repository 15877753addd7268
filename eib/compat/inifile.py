"""One INI file read exactly as Python's configparser reads it, plus lines.

configparser itself does the parsing so continuation lines, comments and
case folding match the legacy builder byte for byte; a second, line-aware
pass only records where each section and key stands, so errors can name
`file:line`.
"""

from __future__ import annotations

import configparser
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from eib.errors import Origin, UserError

# A section name configparser will never see in a real file, so `[build]`
# and `[DEFAULT]` are read as ordinary sections; `[DEFAULT]` is then spread
# over the file's other sections by `_spread_defaults`.
_NO_DEFAULT = "\x00eib-no-default-section"
DEFAULT_SECTION = "DEFAULT"
_SECTION_RE = re.compile(r"\[(?P<header>.+)\]")
_OPTION_RE = re.compile(r"(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$")


@dataclass
class IniFile:
    """The sections of one file in file order, each key with its line."""

    path: Path
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    section_lines: dict[str, int] = field(default_factory=dict)

    def origin(self, section: str, key: str | None = None) -> Origin:
        line = self.lines.get((section, key)) if key else None
        if line is None:
            line = self.section_lines.get(section, 0)
        return Origin(str(self.path), line)


def new_parser() -> configparser.RawConfigParser:
    """A parser configured like the legacy one, minus interpolation and defaults."""
    return configparser.RawConfigParser(
        default_section=_NO_DEFAULT, interpolation=None, strict=True
    )


def read_ini(path: Path) -> IniFile:
    """Parse `path`; a syntax error becomes a UserError naming file and line.

    Cached by (path, mtime, size): a matrix of variants reads each file once.
    Callers must not modify the result.
    """
    try:
        st = path.stat()
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", origin=Origin(str(path))) from None
    return _read_cached(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _read_cached(path: Path, mtime_ns: int, size: int) -> IniFile:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"not UTF-8 text: {err}", origin=Origin(str(path))) from None
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", origin=Origin(str(path))) from None
    parser = new_parser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.DuplicateSectionError as err:
        raise UserError(
            f"section [{err.section}] appears twice in one file",
            origin=Origin(str(path), err.lineno or 0),
        ) from None
    except configparser.DuplicateOptionError as err:
        raise UserError(
            f"[{err.section}] {err.option} is set twice in one file",
            origin=Origin(str(path), err.lineno or 0),
            key=f"{err.section}:{err.option}",
        ) from None
    except configparser.MissingSectionHeaderError as err:
        raise UserError(
            "a key comes before any [section] header",
            origin=Origin(str(path), err.lineno),
        ) from None
    except configparser.ParsingError as err:
        line = err.errors[0][0] if err.errors else 0
        raise UserError(
            "cannot parse this line as 'key = value'", origin=Origin(str(path), line)
        ) from None
    ini = IniFile(path)
    for section in parser.sections():
        ini.sections[section] = dict(parser.items(section))
    _record_lines(ini, text, parser)
    _spread_defaults(ini)
    return ini


def _spread_defaults(ini: IniFile) -> None:
    """`[DEFAULT]` as configparser has it: its keys belong to every section of the file.

    They follow the section's own keys (configparser's `options()` order) and
    never replace one of them; the section `[DEFAULT]` itself is not kept.
    The line of each spread key is its line under `[DEFAULT]`.
    """
    defaults = ini.sections.pop(DEFAULT_SECTION, None)
    ini.section_lines.pop(DEFAULT_SECTION, None)
    if defaults is None:
        return
    for section, options in ini.sections.items():
        for key, value in defaults.items():
            if key not in options:
                options[key] = value
                line = ini.lines.get((DEFAULT_SECTION, key))
                if line is not None:
                    ini.lines[(section, key)] = line
    for key in defaults:
        ini.lines.pop((DEFAULT_SECTION, key), None)


def _record_lines(ini: IniFile, text: str, parser: configparser.RawConfigParser) -> None:
    """Note the line of every section header and of the first line of each key."""
    section: str | None = None
    indent = 0
    in_value = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        this_indent = len(raw) - len(raw.lstrip())
        if in_value and this_indent > indent:
            continue
        in_value = False
        header = _SECTION_RE.match(stripped)
        if header:
            section = header.group("header")
            ini.section_lines.setdefault(section, number)
            continue
        option = _OPTION_RE.match(stripped)
        if option and section is not None:
            key = parser.optionxform(option.group("option").rstrip())
            ini.lines.setdefault((section, key), number)
            indent = this_indent
            in_value = True
