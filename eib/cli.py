"""The `eib` command line.

The CLI runs hundreds of times a day in CI, so start-up matters: this module
imports only typer; every command imports what it needs inside its body.
Errors derived from `EibError` print one line and exit with their code (2 for
bad input, 1 for a failed build); anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="eib",
    help="Declarative OS image builder: YAML recipes → plans → OSTree + Flatpak disk images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
legacy_app = typer.Typer(help="Legacy (INI) informational modes.", no_args_is_help=True)
app.add_typer(legacy_app, name="legacy")

# Options shared by every command that picks a variant.
RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file, or a legacy config dir")]
ProductOpt = Annotated[Optional[str], typer.Option("--product", "-p", help="Product")]
BranchOpt = Annotated[Optional[str], typer.Option("--branch", "-b", help="Branch")]
ArchOpt = Annotated[Optional[str], typer.Option("--arch", "-a", help="amd64, arm64 or i386")]
PlatformOpt = Annotated[Optional[str], typer.Option("--platform", help="Platform")]
PersonalityOpt = Annotated[
    Optional[str], typer.Option("--personality", "-P", help="Personality")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a value: section.key=value (repeatable)"),
]
LocaldirOpt = Annotated[
    Optional[Path], typer.Option("--localdir", "-d", help="Legacy local settings dir")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def variant_options(
    product: str | None,
    branch: str | None,
    arch: str | None,
    platform: str | None,
    personality: str | None,
) -> dict[str, str]:
    given = {
        "product": product,
        "branch": branch,
        "arch": arch,
        "platform": platform,
        "personality": personality,
    }
    return {k: v for k, v in given.items() if v is not None}


def version_callback(value: bool) -> None:
    if value:
        from eib import __version__

        typer.echo(f"eib {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version"),
    ] = False,
) -> None:
    """Declarative OS image builder."""


@app.command()
def plan(
    recipe: RecipeArg,
    product: ProductOpt = None,
    branch: BranchOpt = None,
    arch: ArchOpt = None,
    platform: PlatformOpt = None,
    personality: PersonalityOpt = None,
    set_: SetOpt = None,
    localdir: LocaldirOpt = None,
    json_: JsonOpt = False,
    explain: Annotated[
        Optional[str], typer.Option("--explain", help="Show where section.key was set")
    ] = None,
    diff: Annotated[
        Optional[Path], typer.Option("--diff", help="Compare with a saved plan JSON")
    ] = None,
    matrix: Annotated[
        Optional[list[str]],
        typer.Option("--matrix", help="attr=v1,v2: compile the cross product (repeatable)"),
    ] = None,
    lock: Annotated[Optional[Path], typer.Option("--lock", help="Use pinned inputs")] = None,
) -> None:
    """Compile RECIPE for one variant and show the plan."""
    from eib.commands.plan import run_plan

    run_plan(
        recipe,
        variant_options(product, branch, arch, platform, personality),
        sets=set_ or [],
        localdir=localdir,
        as_json=json_,
        explain=explain,
        diff=diff,
        matrix=matrix or [],
        lock=lock,
    )


@app.command()
def validate(
    recipe: RecipeArg,
    product: ProductOpt = None,
    branch: BranchOpt = None,
    arch: ArchOpt = None,
    platform: PlatformOpt = None,
    personality: PersonalityOpt = None,
    set_: SetOpt = None,
    localdir: LocaldirOpt = None,
) -> None:
    """Check RECIPE for one variant: exit 0, or print the error and exit 2."""
    from eib.commands.plan import run_validate

    run_validate(
        recipe,
        variant_options(product, branch, arch, platform, personality),
        sets=set_ or [],
        localdir=localdir,
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the recipe format."""
    from eib.schema import recipe_schema_json

    sys.stdout.write(recipe_schema_json())


def main() -> None:
    """Console entry point: turn eib's own errors into one line and an exit status."""
    from eib.errors import EibError

    try:
        app()
    except EibError as err:
        from eib.console import print_error

        print_error(err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("eib: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
