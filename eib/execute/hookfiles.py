"""The files legacy hooks expect in `EIB_TMPDIR`: the merged config and the build log.

`EIB_TMPCONFIG` (public) and `EIB_TMPFULLCONFIG` (private values too) are
INI files as the legacy builder wrote them: a `# Configuration for OV`
line, then one section per config section with every value expanded (a
`$` doubled, since legacy readers expand `${…}` references).  The plan
carries the sections (`Plan.config`) with private values as tokens; they
are revealed only into the full file, which is created 0600.
`build.txt` links to the build log, which lives in the output dir.
"""

from __future__ import annotations

import configparser
import io
import os
from collections.abc import Callable
from pathlib import Path

from eib.execute.context import BuildContext
from eib.model.plan import CACHEDIR_TOKEN, Plan
from eib.secrets.tokens import names_in


def write_hook_files(ctx: BuildContext) -> None:
    """(Re)write the config files and the log link; cheap, so done before each group."""
    tmp = ctx.dirs.tmp
    tmp.mkdir(parents=True, exist_ok=True)
    outversion = ctx.plan.outputs.outversion
    public = config_text(ctx, f"# Configuration for {outversion}", full=False)
    full = config_text(ctx, f"# Full configuration for {outversion}", full=True)
    _write(tmp / "config.ini", public, 0o644)
    _write(tmp / "fullconfig.ini", full, 0o600)
    link = tmp / "build.txt"
    log = ctx.dirs.output / ctx.plan.outputs.log
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(log)


def config_text(ctx: BuildContext, header: str, *, full: bool) -> str:
    """The INI dump for hooks; without `full`, options holding a private value are left out."""
    return render_config(ctx.plan, header, reveal=ctx.reveal if full else None,
                         cachedir=str(ctx.dirs.cache))


def render_config(
    plan: Plan, header: str, *, reveal: Callable[[str], str] | None = None,
    cachedir: str | None = None,
) -> str:
    """`header`, then configparser's dump of `plan.config`: keys in lower case,
    continuation lines indented with a tab, as the legacy builder wrote it.

    Options holding a private value are revealed with `reveal`, or left out
    without it; `cachedir` replaces the cache dir's token (kept without it,
    so a published copy names no host path and is the same on every machine).
    """
    parser = configparser.ConfigParser(interpolation=None)
    for section, options in plan.config.items():
        parser.add_section(section)
        for option, value in options.items():
            if names_in(value):
                if reveal is None:
                    continue
                value = reveal(value)
            if cachedir is not None:
                value = value.replace(CACHEDIR_TOKEN, cachedir)
            parser.set(section, option, value.replace("$", "$$"))
    out = io.StringIO()
    parser.write(out)
    return f"{header}\n{out.getvalue()}"


def _write(path: Path, text: str, mode: int) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
