"""Private INI values as references: what a plan holds instead of them.

Every option of a private file becomes a `<secret:section.key>` token before
interpolation, so every value built from one (a public option that
interpolates it) carries the token too, and the compiled plan holds no
private value.  Each private option also becomes a `SecretRef` to its file,
section and key, with the public expansion of each `${...}` it uses, so the
executor re-reads and expands it from the plan alone.

Lists that private files add to or delete from (apps, hooks, locales) are
merged before this step and stay as they are: they say what the build
installs and runs, so the plan must show them; secrets belong in scalar
options.
"""

from __future__ import annotations

import re

from eib.compat.interpolate import Interpolator
from eib.compat.reader import LegacyConfig
from eib.model.plan import SecretRef
from eib.secrets.tokens import token

_REF = re.compile(r"\$\{([^}]*)\}")
_PROBE = "\x00reference"


def masked_sections(config: LegacyConfig) -> tuple[dict[str, dict[str, str]], list[SecretRef]]:
    """The expanded sections with private values as tokens, and their references."""
    raw = config.raw()
    private: list[tuple[str, str]] = []
    for section, entries in config.sections.items():
        for key, entry in entries.items():
            if entry.private:
                private.append((section, key))
                raw[section][key] = token(f"{section}.{key}")
    interp = Interpolator(raw, config.origin_of)
    sections = {s: {k: interp.expand(s, k).value for k in opts} for s, opts in raw.items()}
    refs = []
    for section, key in sorted(private):
        entry = config.sections[section][key]
        context: dict[str, str] = {}
        for ref in _REF.findall(entry.value):
            probe = {**raw, section: {**raw[section], _PROBE: f"${{{ref}}}"}}
            context[ref] = Interpolator(probe, config.origin_of).expand(section, _PROBE).value
        refs.append(
            SecretRef(
                name=f"{section}.{key}",
                source="file-key",
                where=entry.origin.file,
                key=[section, key],
                interpolate=context,
            )
        )
    return sections, refs
