"""The readable form of a plan: a tree of the resolved recipe and the stages."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.tree import Tree as RichTree

from eib.compile import CompileResult


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "[]"
    return str(value)


def _section(parent: RichTree, title: str, values: dict[str, Any], skip_empty: bool = True) -> None:
    node = parent.add(f"[bold]{title}[/]")
    for key, value in values.items():
        if skip_empty and value in ("", [], None, {}):
            continue
        if isinstance(value, dict):
            _section(node, key, value, skip_empty)
        else:
            node.add(f"{key}: [cyan]{_fmt(value)}[/]")


def print_plan(result: CompileResult, console: Console | None = None) -> None:
    console = console or Console()
    plan = result.plan
    b = plan.build
    root = RichTree(
        f"[bold]{plan.outputs.outversion}[/]  [dim]{plan.digest}[/]",
        guide_style="dim",
    )
    variant = root.add("[bold]variant[/]")
    for attr in ("product", "branch", "arch", "platform", "personality", "series"):
        variant.add(f"{attr}: [cyan]{getattr(b, attr)}[/]")
    _section(root, "ostree", plan.ostree.model_dump(mode="json"))
    _section(root, "image", plan.image.model_dump(mode="json"))
    flatpak = plan.flatpak.model_dump(mode="json")
    _section(root, "flatpak", flatpak)
    if plan.publish.targets:
        pub = root.add("[bold]publish[/]")
        pub.add(f"path: [cyan]{plan.publish.path}[/]")
        for target in plan.publish.targets:
            shown = {k: v for k, v in target.model_dump(mode="json").items() if v not in ("", None)}
            pub.add(", ".join(f"{k}={v}" for k, v in shown.items()))
    if plan.secrets:
        sec = root.add("[bold]secrets[/]")
        for ref in plan.secrets:
            sec.add(f"{ref.name}: [dim]<redacted> ({ref.source})[/]")
    for name, options in plan.extra.items():
        _section(root, name, options)
    stages = root.add("[bold]stages[/]")
    for stage in plan.stages:
        if not stage.steps and stage.name != "error":
            continue
        node = stages.add(f"[bold magenta]{stage.name}[/]")
        for step in stage.steps:
            node.add(f"{step.name} [dim]{step.description}[/]")
    outputs = root.add("[bold]outputs[/]")
    for name in ("compressed", "manifest", "config", "plan", "log"):
        outputs.add(getattr(plan.outputs, name))
    console.print(root)
