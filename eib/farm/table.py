"""Tables of task views for people (rich) and lines for logs and pipes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eib.farm.results import TaskView

if TYPE_CHECKING:
    from rich.table import Table


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def clock(stamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(stamp)) if stamp else ""


def describe(v: TaskView) -> str:
    """The result column: what happened, in a few words."""
    if v.status == "queued":
        return f"queued on {v.queue}"
    if v.status == "waiting":
        return f"waiting ({v.error})" if v.error else "waiting"
    if v.status == "lost":
        return "worker lost; the task will be delivered again"
    if v.status == "failed":
        return f"failed: {v.error}"
    if v.status == "already-built":
        by = v.result.get("built_by")
        return f"already built (by {by})" if by else "already built"
    return v.status


def task_table(views: list[TaskView], title: str | None = None, *, since: bool = False) -> Table:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    columns = ["variant", "worker", "stage", "elapsed", "result"] + (["since"] if since else [])
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in ("variant", "worker", "since"))
    for v in views:
        stage = v.stage if v.status in ("running", "lost") else ""
        style = {"failed": "red", "built": "green", "already-built": "green",
                 "lost": "yellow"}.get(v.status)
        cells = [v.variant, v.worker.split("@")[0] if v.worker else "", stage,
                 duration(v.elapsed), describe(v)] + ([clock(v.since)] if since else [])
        table.add_row(*cells, style=style)
    return table


def plain_line(v: TaskView) -> str:
    stage = f" [{v.stage}]" if v.status in ("running", "lost") else ""
    worker = f" on {v.worker}" if v.worker else ""
    return f"{v.variant}{worker}{stage} {duration(v.elapsed)}: {describe(v)}"
