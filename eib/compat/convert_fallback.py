"""The final values of options a converted tree cannot say layer by layer.

Such an option is written per combination of attribute values the tree
distinguishes, as a decision list of overlays from general to specific:
a later overlay overrides an earlier one that also matches.
"""

from __future__ import annotations

from typing import Any, Protocol

from eib.load.keypaths import set_at

KeyPath = tuple[str, ...]


class Resolver(Protocol):
    """What these functions need of `eib.compat.convert.Converter`."""

    def classes(self) -> list[dict[str, str]]: ...

    def resolved_value(self, when: dict[str, str], path: KeyPath) -> Any: ...


def fallback_doc(conv: Resolver, paths: dict[KeyPath, str]) -> dict[str, Any]:
    """Base values in the body, then overlays from general to specific."""
    overlays = _fallback_overlays(conv, paths)
    doc: dict[str, Any] = {}
    if overlays and not overlays[0]["when"]:
        doc.update({k: v for k, v in overlays.pop(0).items() if k != "when"})
    if overlays:
        doc["overlays"] = overlays
    return doc


def _fallback_overlays(conv: Resolver, paths: dict[KeyPath, str]) -> list[dict[str, Any]]:
    """A decision list: later (more specific) overlays override earlier ones."""
    emitted: list[tuple[dict[str, str], dict[KeyPath, Any]]] = []
    for when in conv.classes():
        changes: dict[KeyPath, Any] = {}
        for path in paths:
            want = conv.resolved_value(when, path)
            have = None
            for prior_when, prior in emitted:
                if path in prior and _matches(prior_when, when):
                    have = prior[path]
            if want != have:
                changes[path] = want
        if changes or not when:
            emitted.append((when, changes))
    overlays = []
    for when, changes in emitted:
        overlay: dict[str, Any] = {"when": dict(when)}
        for path, value in changes.items():
            set_at(overlay, path, value)
        overlays.append(overlay)
    return overlays


def _matches(when: dict[str, str], variant: dict[str, str]) -> bool:
    for attr, value in when.items():
        actual = variant.get(attr)
        if actual is None:
            return False
        if attr == "personality":
            if not (actual == value or actual.startswith(value + "_")):
                return False
        elif actual != value:
            return False
    return True
