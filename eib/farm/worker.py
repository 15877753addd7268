"""`eib farm worker`: a Celery worker serving build queues, in the foreground.

SIGTERM or a first Ctrl-C is Celery's warm shutdown: no new task is taken
and the current builds finish.  A second Ctrl-C (or SIGQUIT) is a cold
shutdown: the builds are stopped (their error stage cleans up) and, being
unacknowledged, their tasks go back to the queue for another worker.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import warnings
from pathlib import Path

from eib.errors import UserError
from eib.farm.settings import ARCH_QUEUES, Tunables, check_broker, make_app, redact
from eib.farm.slots import BaseDirs
from eib.paths import DEFAULT_STATE_DIR

DEFAULT_CACHE = Path("/var/cache/eib-farm")
DEFAULT_WORK = DEFAULT_STATE_DIR / "farm"  # root-owned, like every build dir


def base_dirs(cache: Path | None, work: Path | None, output: Path | None) -> BaseDirs:
    cache = (cache or DEFAULT_CACHE).absolute()
    work = (work or DEFAULT_WORK).absolute()
    output = (output or work / "out").absolute()
    if cache.is_relative_to(work) or work.is_relative_to(cache):
        raise UserError(f"the cache dir {cache} and the work dir {work} must not nest",
                        key="--work-dir")
    if output != work / "out" and (work.is_relative_to(output) or output.is_relative_to(work)):
        raise UserError(f"the output dir {output} and the work dir {work} must not nest",
                        key="--output-dir")
    return BaseDirs(cache=cache, work=work, output=output)


def check_queues(queues: list[str]) -> list[str]:
    if not queues:
        raise UserError("name at least one queue, e.g. --queue amd64", key="--queue")
    for queue in queues:
        if not queue or any(c.isspace() or c == "," for c in queue):
            raise UserError(f"not a queue name: {queue!r}", key="--queue")
    return list(dict.fromkeys(queues))


def run_worker(
    broker: str,
    queues: list[str],
    *,
    concurrency: int,
    cache_dir: Path | None,
    work_dir: Path | None,
    output_dir: Path | None,
    name: str | None,
    loglevel: str,
) -> None:
    from eib.farm import task

    check_broker(broker)
    queues = check_queues(queues)
    if concurrency < 1:
        raise UserError("must be 1 or more", key="--concurrency")
    base = base_dirs(cache_dir, work_dir, output_dir)
    tunables = Tunables.from_env()
    app = make_app(broker, tunables)
    task.register(app)
    task.SETUP = task.WorkerSetup(broker=broker, base=base, tunables=tunables)
    nodename = name or f"eib-{'-'.join(queues)}-{os.getpid()}@{socket.gethostname()}"
    _log_to_stdout(loglevel)
    # Builds need root (ostree deploy, loop-free disk assembly, chattr); only JSON
    # messages are accepted, which is what Celery's warning about root is about.
    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
    unknown = [q for q in queues if q not in ARCH_QUEUES]
    logging.getLogger("eib.farm").info(
        "worker %s: queues %s%s, %d slot(s), broker %s, work %s, cache %s, output %s",
        nodename, ",".join(queues),
        f" (not an architecture: {','.join(unknown)})" if unknown else "",
        concurrency, redact(broker), base.work, base.cache, base.output,
    )
    app.worker_main([
        "worker",
        "--hostname", nodename,
        "--queues", ",".join(queues),
        "--concurrency", str(concurrency),
        "--pool", "prefork",
        "--loglevel", loglevel,
        "--without-gossip",
        "--without-mingle",
        "--task-events",
    ])


def _log_to_stdout(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
