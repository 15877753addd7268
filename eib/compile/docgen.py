"""The recipe reference (docs/recipe-reference.md), generated from the models.

The models are the one table of settings: parsing, the JSON Schema and this
reference all come from them, so none can drift (a test compares the
committed file with this output).
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from eib.model.recipe import (
    BuildSettings,
    BuildSwitches,
    Demo,
    Flatpak,
    FlatpakRemote,
    Hooks,
    Image,
    LocalTarget,
    Ostree,
    Publish,
    RsyncTarget,
    S3Target,
    Secret,
    Variant,
)

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("variant", Variant),
    ("build (command-line switches)", BuildSwitches),
    ("build", BuildSettings),
    ("ostree", Ostree),
    ("image", Image),
    ("flatpak", Flatpak),
    ("flatpak.remotes.NAME", FlatpakRemote),
    ("hooks", Hooks),
    ("publish", Publish),
    ("publish.targets[] (kind: s3)", S3Target),
    ("publish.targets[] (kind: rsync)", RsyncTarget),
    ("publish.targets[] (kind: local)", LocalTarget),
    ("secrets.NAME", Secret),
    ("demo", Demo),
]


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if "StringConstraints" in str(annotation):
        return "list[hook name]"
    text = str(annotation) if not isinstance(annotation, type) else annotation.__name__
    for noise in ("typing.", "eib.model.recipe."):
        text = text.replace(noise, "")
    return text.replace("|", "\\|")


def _default(info: FieldInfo) -> str:
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value in ("", [], {}):
        return "(empty)"
    return f"`{value}`"


def recipe_reference() -> str:
    lines = [
        "# Recipe reference",
        "",
        "Generated from the models by `python -m eib.compile.docgen`"
        " (a test checks it is current).",
        "List fields take a plain list or `{add: [...], del: [...]}`; string values may use",
        "`${key}` and `${section:key}` interpolation.",
        "",
    ]
    for name, model in SECTIONS:
        lines += [f"## `{name}`", "", (model.__doc__ or "").strip(), ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for field, info in model.model_fields.items():
            doc = (info.description or "").replace("|", "\\|")
            type_name = _type_name(info.annotation)
            lines.append(f"| `{field}` | {type_name} | {_default(info)} | {doc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(recipe_reference(), end="")
