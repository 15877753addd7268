"""The `eib` command line.

The CLI runs hundreds of times a day in CI, so start-up matters: this module
imports only typer; every command imports what it needs inside its body.
Errors derived from `EibError` print one line and exit with their code (2 for
bad input, 1 for a failed build); anything else is a bug and keeps its
traceback.
"""


import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="eib",
    help="Declarative OS image builder: YAML recipes → plans → OSTree + Flatpak disk images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich's help renderer costs ~200 ms of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)
legacy_app = typer.Typer(
    help="Legacy (INI) informational modes.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(legacy_app, name="legacy")

from eib.commands.options import (  # noqa: E402
    ArchOpt,
    BranchOpt,
    JsonOpt,
    LocaldirOpt,
    LockOpt,
    PersonalityOpt,
    PlatformOpt,
    ProductionOpt,
    ProductOpt,
    RecipeArg,
    VariantArgs,
    variant_options,
)


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
@variant_options
def plan(
    recipe: RecipeArg,
    variant: VariantArgs,
    json_: JsonOpt = False,
    explain: Annotated[
        str | None, typer.Option("--explain", help="Show where section.key was set")
    ] = None,
    diff: Annotated[
        Path | None,
        typer.Option("--diff", help="Compare with a saved plan JSON", readable=False),
    ] = None,
    matrix: Annotated[
        list[str] | None,
        typer.Option("--matrix", help="attr=v1,v2: compile the cross product (repeatable)"),
    ] = None,
    lock: LockOpt = None,
) -> None:
    """Compile RECIPE for one variant and show the plan."""
    from eib.commands.plan import run_plan

    run_plan(
        variant.request(recipe, lock),
        as_json=json_,
        explain=explain,
        diff=diff,
        matrix=matrix or [],
    )


@app.command()
@variant_options
def validate(recipe: RecipeArg, variant: VariantArgs) -> None:
    """Check RECIPE for one variant: exit 0, or print the error and exit 2."""
    from eib.commands.plan import run_validate

    run_validate(variant.request(recipe))


@app.command()
@variant_options
def apps(
    recipe: RecipeArg,
    variant: VariantArgs,
    group_by: Annotated[
        str, typer.Option("--group-by", help="Group by 'runtime' or 'nature'")
    ] = "runtime",
    trim: Annotated[
        int | None,
        typer.Option("--trim", help="Propose apps to drop to save at least BYTES of download"),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List the Flatpaks RECIPE installs with their sizes (reads the remotes, installs nothing)."""
    from eib.commands.apps import run_apps

    run_apps(
        variant.request(recipe),
        group_by=group_by,
        trim_bytes=trim,
        as_json=json_,
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the recipe format."""
    from eib.commands.schema import run_schema

    run_schema()


@app.command()
@variant_options
def run(
    variant: VariantArgs,
    recipe: Annotated[
        Path | None,
        typer.Argument(help="Recipe YAML file, or a legacy config dir", readable=False),
    ] = None,
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="Run a saved plan JSON instead of a recipe", readable=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Build everything but do not publish")
    ] = False,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="Comma-separated subset of ostree,image,manifest,publish"),
    ] = None,
    no_disk: Annotated[
        bool, typer.Option("--no-disk", help="Stop the image stage after deployment and Flatpaks")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", envvar="EIB_CACHE_DIR", help="Default /var/cache/eib"),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", envvar="EIB_WORK_DIR", help="Default /var/lib/eib/work"),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", envvar="EIB_OUTPUT_DIR",
            help="Default <work-dir>/out, or /var/lib/eib/out",
        ),
    ] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option("--lock-timeout", help="Seconds to wait for the cache lock (0: fail at once)"),
    ] = None,
    lock: LockOpt = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither reuse nor store stage results")
    ] = False,
    explain_cache: Annotated[
        bool, typer.Option("--explain-cache", help="Say why each stage is reused or re-run")
    ] = False,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            help="Where a plan's secret comes from for this run: NAME=@FILE or NAME=env:VAR",
        ),
    ] = None,
    progress: Annotated[
        str,
        typer.Option("--progress", help="auto, tty (live bars), plain (log lines), json (events)"),
    ] = "auto",
) -> None:
    """Build RECIPE (or a saved --plan): ostree → image → manifest → publish."""
    from eib.commands.run import run_build

    run_build(
        recipe,
        variant,
        plan_file=plan_file,
        dry_run=dry_run,
        stages=stages,
        no_disk=no_disk,
        cache_dir=cache_dir,
        work_dir=work_dir,
        output_dir=output_dir,
        lock_timeout=lock_timeout,
        lock=lock,
        use_cache=not no_cache,
        explain_cache=explain_cache,
        secrets=secret or [],
        progress=progress,
    )


@app.command()
@variant_options
def publish(
    variant: VariantArgs,
    output_dir: Annotated[Path, typer.Argument(help="Output dir of a finished build")],
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="The build's plan JSON (default: the one in OUTPUT_DIR)"),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", help="Recipe YAML file, or a legacy config dir")
    ] = None,
) -> None:
    """Publish OUTPUT_DIR again (e.g. after a network failure) without rebuilding."""
    from eib.commands.publish import run_publish

    run_publish(
        output_dir,
        plan_file=plan_file,
        recipe=recipe,
        variant=variant,
    )


@app.command()
@variant_options
def lock(
    recipe: RecipeArg,
    variant: VariantArgs,
    matrix: Annotated[
        list[str] | None,
        typer.Option("--matrix", help="attr=v1,v2: lock the cross product (repeatable)"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Lock file (default <recipe>.lock)")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Verify the lock's commits are still on the servers")
    ] = False,
) -> None:
    """Pin the OSTree and Flatpak commits of RECIPE's variants in a lock file."""
    from eib.commands.lock import run_lock

    run_lock(
        variant.request(recipe),
        matrix=matrix or [],
        output=output,
        check=check,
    )


cache_app = typer.Typer(help="Show and bound the stage cache.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(cache_app, name="cache")
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar="EIB_CACHE_DIR", help="Default /var/cache/eib"),
]


@cache_app.command("ls")
def cache_ls(cache_dir: CacheDirOpt = None, json_: JsonOpt = False) -> None:
    """List cached stage results: stage, key, size, age, last use."""
    from eib.commands.cache import run_cache_ls

    run_cache_ls(cache_dir, as_json=json_)


@cache_app.command("gc")
def cache_gc(
    max_size: Annotated[
        str, typer.Option("--max-size", help="Bytes to keep at most (suffixes K, M, G allowed)")
    ],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Evict least recently used stage results until the cache fits in --max-size."""
    from eib.commands.cache import run_cache_gc

    run_cache_gc(cache_dir, max_size)


@cache_app.command("explain")
@variant_options
def cache_explain(
    recipe: RecipeArg,
    variant: VariantArgs,
    lock_file: LockOpt = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Say, per stage, whether a build of RECIPE would reuse the cache, and why not."""
    from eib.commands.cache import run_cache_explain

    run_cache_explain(
        variant.request(recipe, lock_file),
        cache_dir=cache_dir,
    )


@app.command("demo-os")
def demo_os(
    dir_: Annotated[
        Path | None,
        typer.Option("--dir", help="Demo dir (default: $EIB_CACHE_DIR/demo, /var/cache/eib/demo)"),
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve on 127.0.0.1 until Ctrl-C")] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve (0: any free one)")] = 8000,
    os_: Annotated[
        str, typer.Option("--os", help="busybox (tiny, ~20 s) or debian (systemd, Flatpak)")
    ] = "busybox",
) -> None:
    """Build (once) the small bootable demo OS and its signed repos; optionally serve them."""
    from eib.commands.demo_os import run_demo_os

    run_demo_os(dir_, serve_it=serve, port=port, os_name=os_)


@legacy_app.command("show-config")
def legacy_show_config(
    config_dir: Annotated[
        Path, typer.Option("--config-dir", help="Legacy config dir (holds defaults.ini)")
    ],
    product: ProductOpt = None,
    branch: BranchOpt = None,
    arch: ArchOpt = None,
    platform: PlatformOpt = None,
    personality: PersonalityOpt = None,
    localdir: LocaldirOpt = None,
    sysconfdir: Annotated[
        Path | None,
        typer.Option("--sysconfdir", help="System config dir (default /etc/eos-image-builder)"),
    ] = None,
    srcdir: Annotated[
        Path | None,
        typer.Option("--srcdir", help="Checkout holding the config dir (default: its parent)"),
    ] = None,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Print values with ${...} expanded")
    ] = False,
    use_production_ostree: ProductionOpt = False,
) -> None:
    """Print the merged public INI config, like the legacy --show-config.

    The production switch is accepted so legacy command lines pass through;
    like the legacy --show-config, the printed configuration is the same.
    """
    from eib.commands.legacy import run_show_config

    run_show_config(
        config_dir,
        {k: v for k, v in {"product": product, "branch": branch, "arch": arch,
                           "platform": platform, "personality": personality}.items()
         if v is not None},
        localdir=localdir,
        sysconfdir=sysconfdir,
        srcdir=srcdir,
        resolved=resolved,
    )


@app.command()
def convert(
    ini_dir: Annotated[Path, typer.Argument(help="Legacy config dir (holds defaults.ini)")],
    out_dir: Annotated[Path, typer.Argument(help="Directory to write YAML recipes into")],
    localdir: LocaldirOpt = None,
) -> None:
    """Write YAML recipes equivalent to a legacy INI tree, one layer per INI file."""
    from eib.commands.convert import run_convert

    run_convert(ini_dir, out_dir, localdir=localdir)


@app.command()
def inspect(
    image: Annotated[
        Path,
        typer.Argument(help="Disk image: .img, .img.gz, .img.xz or .img.zst", readable=False),
    ],
    json_: JsonOpt = False,
) -> None:
    """Show an image's partitions, file systems, deployments and boot entries."""
    from eib.commands.inspect import run_inspect

    run_inspect(image, as_json=json_)


@app.command()
def boot(
    image: Annotated[Path, typer.Argument(help="Disk image: .img, .img.gz, .img.xz or .img.zst")],
    firmware: Annotated[str, typer.Option("--firmware", help="uefi or bios")] = "uefi",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait")] = 300,
    expect: Annotated[
        str | None, typer.Option("--expect", help="Success text (default: demo marker)")
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="Serial console log (default /var/lib/eib/boot/…)"),
    ] = None,
) -> None:
    """Boot IMAGE in QEMU (TCG) and wait for the expected text on the serial console."""
    from eib.commands.boot import run_boot

    run_boot(image, firmware=firmware, timeout=timeout, expect=expect, log_file=log)


from eib.commands.farm_cli import farm_app  # noqa: E402

app.add_typer(farm_app, name="farm")


def main() -> None:
    """Run the CLI on sys.argv; eib's own errors become one line and an exit status.

    SIGTERM and SIGINT raise `Interrupted` from the start (not the
    KeyboardInterrupt the command-line framework would turn into a silent
    exit): cleanups run, then one line says what was stopped, and the exit
    status is the shell's 128 + signal (143, 130).
    """
    from eib.errors import EibError
    from eib.interrupt import Interrupted, install

    install()
    try:
        app()
    except EibError as err:
        from eib.console import print_error

        print_error(err)
        sys.exit(err.exit_code)
    except Interrupted as err:
        sys.stderr.write(err.line() + "\n")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("eib: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
