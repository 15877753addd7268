"""`eib farm status`: queued, running, finished and failed builds."""

from __future__ import annotations

import json
import sys
import time

from eib.farm.results import TaskView, view

GROUPS = (
    ("queued", ("queued", "waiting")),
    ("running", ("running", "lost")),
    ("finished", ("built", "already-built")),
    ("failed", ("failed",)),
)


def run_status(broker: str, *, as_json: bool, limit: int) -> None:
    from eib.farm.registry import load, queue_length
    from eib.farm.settings import ARCH_QUEUES, check_broker
    from eib.farm.submit import connect_checked

    check_broker(broker)
    app, client = connect_checked(broker)
    entries = load(client)[-limit:] if limit else load(client)
    now = time.time()
    views = [view(app, client, e, now) for e in entries]
    names = sorted({*ARCH_QUEUES, *(e.queue for e in entries)})
    queues = {q: queue_length(client, q) for q in names}
    grouped = {name: [v for v in views if v.status in members] for name, members in GROUPS}
    if as_json:
        data = {"queues": queues,
                **{name: [v.to_json() for v in group] for name, group in grouped.items()}}
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    _print(grouped, queues)


def _print(grouped: dict[str, list[TaskView]], queues: dict[str, int]) -> None:
    from rich.console import Console

    from eib.farm.table import task_table

    console = Console(soft_wrap=False, width=max(100, Console().width))
    waiting = ", ".join(f"{q} {n}" for q, n in queues.items() if n) or "none"
    console.print(f"messages waiting in queues: {waiting}", markup=False)
    for name, group in grouped.items():
        if not group:
            continue
        console.print(task_table(group, title=f"{name} ({len(group)})", since=True))
    if not any(grouped.values()):
        console.print("no builds submitted (or all older than the result expiry)")
