"""The readable form of a plan: a tree of the resolved recipe and the stages.

Drawn with plain box characters rather than rich: `eib plan` runs hundreds of
times a day in CI and rich's import alone costs ~50 ms of its start-up.
Colour (bold headings, dim details) is used only on a terminal.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from eib.compile.compiler import CompileResult


@dataclass
class Node:
    label: str
    children: list[Node] = field(default_factory=list)

    def add(self, label: str) -> Node:
        child = Node(label)
        self.children.append(child)
        return child


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def value(self, text: str) -> str:
        return self._wrap("36", text)


def _lines(node: Node, prefix: str = "") -> list[str]:
    out = []
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        out.append(f"{prefix}{'└── ' if last else '├── '}{child.label}")
        out.extend(_lines(child, prefix + ("    " if last else "│   ")))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value) if value else "[]"
    text = str(value)
    if "\n" in text.strip() or len(text) > 200:
        # Carried content (a key): its digest says which, the JSON plan holds it whole.
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        kind = "armoured key" if "BEGIN PGP" in text else "content"
        return f"<{kind}, sha256 {digest}…>"
    return text


def _section(parent: Node, style: Style, title: str, values: dict[str, Any]) -> None:
    node = parent.add(style.bold(title))
    for key, value in values.items():
        if value in ("", [], None, {}):
            continue
        if isinstance(value, dict):
            _section(node, style, key, value)
        else:
            node.add(f"{key}: {style.value(_fmt(value))}")


def plan_tree(result: CompileResult, style: Style) -> Node:
    plan = result.plan
    b = plan.build
    root = Node(f"{style.bold(plan.outputs.outversion)}  {style.dim(plan.digest)}")
    if plan.warnings:
        warn = root.add(style.bold("warnings"))
        for warning in plan.warnings:
            warn.add(warning)
    variant = root.add(style.bold("variant"))
    for attr in ("product", "branch", "arch", "platform", "personality", "series"):
        variant.add(f"{attr}: {style.value(getattr(b, attr))}")
    _section(root, style, "ostree", plan.ostree.model_dump(mode="json"))
    _section(root, style, "image", plan.image.model_dump(mode="json"))
    _section(root, style, "flatpak", plan.flatpak.model_dump(mode="json"))
    if plan.publish.targets:
        pub = root.add(style.bold("publish"))
        pub.add(f"path: {style.value(plan.publish.path)}")
        for target in plan.publish.targets:
            shown = {k: v for k, v in target.model_dump(mode="json").items() if v not in ("", None)}
            pub.add(", ".join(f"{k}={v}" for k, v in shown.items()))
    if plan.secrets:
        sec = root.add(style.bold("secrets"))
        for ref in plan.secrets:
            sec.add(f"{ref.name}: {style.dim(f'<redacted> ({ref.source})')}")
    for name, options in plan.extra.items():
        _section(root, style, name, options)
    stages = root.add(style.bold("stages"))
    for stage in plan.stages:
        if not stage.steps and stage.name != "error":
            continue
        node = stages.add(style.bold(stage.name))
        for step in stage.steps:
            node.add(f"{step.name} {style.dim(step.description)}")
    outputs = root.add(style.bold("outputs"))
    for name in ("compressed", "manifest", "config", "plan", "log"):
        outputs.add(getattr(plan.outputs, name))
    return root


def print_plan(result: CompileResult, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    color = stream.isatty() and not os.environ.get("NO_COLOR")
    root = plan_tree(result, Style(color))
    stream.write("\n".join([root.label, *_lines(root)]) + "\n")
