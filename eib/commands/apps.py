"""`eib apps`: the Flatpaks a variant installs, their sizes, and what to trim."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from eib.compile.compiler import CompileRequest, compile_plan
from eib.errors import UserError
from eib.flatpak.apps import GroupBy, show_apps
from eib.model.plan import Plan
from eib.paths import demo_dir


def run_apps(
    request: CompileRequest,
    *,
    group_by: str,
    trim_bytes: int | None,
    as_json: bool,
) -> None:
    if group_by not in ("runtime", "nature"):
        raise UserError(f"--group-by must be 'runtime' or 'nature', not '{group_by}'")
    if trim_bytes is not None and trim_bytes < 0:
        raise UserError("--trim must be a number of bytes >= 0")
    plan = compile_plan(request).plan
    if not plan.flatpak.enable or not any(r.enable for r in plan.flatpak.remotes.values()):
        sys.stdout.write("no Flatpaks: flatpak is disabled or has no enabled remote\n")
        return
    mode: GroupBy = "nature" if group_by == "nature" else "runtime"
    with _demo_served(plan):
        text = show_apps(plan, group_by=mode, trim_bytes=trim_bytes, as_json=as_json)
    sys.stdout.write(text)


@contextlib.contextmanager
def _demo_served(plan: Plan) -> Iterator[None]:
    """The demo recipe's remotes are the embedded demo repos: serve them while reading."""
    if not plan.demo.serve:
        yield
        return
    from eib.demo import serve
    from eib.demo.select import ensure_demo_os

    root = ensure_demo_os(demo_dir(), plan.demo.os)
    with serve(root, plan.demo.port):
        yield
