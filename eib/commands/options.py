"""The options that pick a variant, declared once for every command that takes them.

`plan`, `validate`, `run`, `apps`, `lock`, `cache explain`, `publish` and
`farm submit` all select one variant of a recipe the same way.  A command
decorated with `@variant_options` receives them as one `VariantArgs` instead
of seven parameters, and turns them into a `CompileRequest` with the recipe
(and lock) it takes.  Imports stay light: this runs at every start-up.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from eib.compile.compiler import CompileRequest

VARIANT_ATTRS = ("product", "branch", "arch", "platform", "personality")

ProductOpt = Annotated[str | None, typer.Option("--product", "-p", help="Product")]
BranchOpt = Annotated[str | None, typer.Option("--branch", "-b", help="Branch")]
ArchOpt = Annotated[str | None, typer.Option("--arch", "-a", help="amd64, arm64 or i386")]
PlatformOpt = Annotated[str | None, typer.Option("--platform", help="Platform")]
PersonalityOpt = Annotated[str | None, typer.Option("--personality", "-P", help="Personality")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a value: section.key=value (repeatable)"),
]
# Paths are `readable=False`: click's own check prints a three-line usage error;
# the loaders refuse an unreadable file in one line naming it, as for any bad input.
LocaldirOpt = Annotated[
    Path | None,
    typer.Option("--localdir", "-d", help="Legacy local settings dir", readable=False),
]

# The legacy switch, under both its legacy names; the same as
# `--set build.use_production_ostree=true`.
ProductionOpt = Annotated[
    bool,
    typer.Option(
        "--use-production-ostree",
        "--use-production",
        help="Pull the OS from ostree.prod_url (a legacy tree's prod_pull_url)",
    ),
]

RecipeArg = Annotated[
    Path, typer.Argument(help="Recipe YAML file, or a legacy config dir", readable=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
LockOpt = Annotated[
    Path | None,
    typer.Option("--lock", help="Use the commits `eib lock` pinned", readable=False),
]

_PARAMETERS = [
    inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=False if annotation is ProductionOpt else None,
        annotation=annotation,
    )
    for name, annotation in (
        ("product", ProductOpt),
        ("branch", BranchOpt),
        ("arch", ArchOpt),
        ("platform", PlatformOpt),
        ("personality", PersonalityOpt),
        ("set_", SetOpt),
        ("localdir", LocaldirOpt),
        ("use_production_ostree", ProductionOpt),
    )
]
_NAMES = frozenset(p.name for p in _PARAMETERS)


@dataclass(frozen=True)
class VariantArgs:
    """The variant options as given on the command line."""

    variant: dict[str, str] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    localdir: Path | None = None
    use_production_ostree: bool = False

    @property
    def given(self) -> bool:
        return bool(self.variant or self.sets or self.localdir or self.use_production_ostree)

    def request(self, recipe: Path, lock: Path | None = None) -> CompileRequest:
        """The compile request; a bad attribute is refused here, named as its option."""
        from eib.compile.compiler import CompileRequest
        from eib.variant import check_variant_value

        for attr, value in self.variant.items():
            check_variant_value(attr, value, key=f"--{attr}")
        sets = self.sets
        if self.use_production_ostree:
            sets = (*sets, "build.use_production_ostree=true")
        return CompileRequest(recipe, dict(self.variant), sets, self.localdir, lock)


def variant_args(values: dict[str, Any]) -> VariantArgs:
    """VariantArgs from the decorated parameters' values (those not given are None)."""
    return VariantArgs(
        variant={k: values[k] for k in VARIANT_ATTRS if values.get(k) is not None},
        sets=tuple(values.get("set_") or ()),
        localdir=values.get("localdir"),
        use_production_ostree=bool(values.get("use_production_ostree")),
    )


F = TypeVar("F", bound=Callable[..., Any])


def variant_options(command: F) -> F:
    """Give `command` the variant options; it receives them as `variant: VariantArgs`."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "variant"]
    positional = [p for p in own if p.default is inspect.Parameter.empty]
    optional = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in positional]
    parameters = [*positional, *_PARAMETERS, *optional]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        chosen = {name: kwargs.pop(name) for name in list(kwargs) if name in _NAMES}
        return command(*args, variant=variant_args(chosen), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__
    return wrapper  # type: ignore[return-value]
