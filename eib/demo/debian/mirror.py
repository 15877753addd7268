"""The Debian archive the host is configured for, read from its apt sources.

The Debian OS is bootstrapped from whatever mirror the build machine already
uses (a local mirror, a proxy, deb.debian.org), so no URL is written into eib
or its outputs: the sources lines go to mmdebstrap on stdin, and the tree's
own apt sources and lists are removed before it is committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eib.errors import BuildError

APT_DIR = Path("/etc/apt")
SUITE = "bookworm"


@dataclass(frozen=True)
class Source:
    """One `deb` source: the archive URI, a suite and its components."""

    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def _one_line(text: str) -> list[Source]:
    found = []
    for raw in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(line) >= 4 and line[0] == "deb":
            found.append(Source(line[1], line[2], tuple(line[3:])))
    return found


def _deb822(text: str) -> list[Source]:
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        components = tuple(fields.get("components", "main").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append(Source(uri, suite, components))
    return found


def host_sources(apt_dir: Path = APT_DIR, suite: str = SUITE) -> list[Source]:
    """The host's `deb` sources for `suite` and its -updates/-security suites,
    main component only (the OS is free software only)."""
    sources: list[Source] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            sources += _deb822(text)
        elif path.suffix == ".list":
            sources += _one_line(text)
    wanted = [
        Source(s.uri, s.suite, ("main",))
        for s in sources
        if (s.suite == suite or s.suite.startswith(f"{suite}-")) and "main" in s.components
    ]
    unique = list(dict.fromkeys(wanted))
    if not any(s.suite == suite for s in unique):
        raise BuildError(
            f"the host's apt sources name no Debian '{suite}' archive with 'main'"
            f" (looked in {apt_dir}/sources.list and sources.list.d/)",
            stage="demo",
            step="debian",
        )
    return unique


def scrub(text: str, sources: list[Source]) -> str:
    """`text` with every mirror URI replaced, for messages that end up in logs."""
    for source in sources:
        text = text.replace(source.uri, "<mirror>")
    return text
