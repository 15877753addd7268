"""The ostree stage: bring the plan's OS commit, GPG-verified, into the cache repo.

The cache repo (`<cache>/ostree/repo`, mode `bare`) persists between builds so
a pull only fetches what changed.  The remote is recreated on every build so
that its URL and trusted keys are exactly the plan's, never a previous
build's.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from eib.errors import BuildError
from eib.execute.context import BuildContext
from eib.execute.progress_report import tree_bytes, watching
from eib.network import NetworkDeadline, NetworkLimits, backoff
from eib.tools import keys, ostree
from eib.tools.ostree import GpgVerifyError

log = logging.getLogger("eib.execute.ostree")

CACHE_REPO_MODE = "bare"


def key_files(ctx: BuildContext, scratch: Path) -> list[Path]:
    """The plan's OSTree keys as files (see `eib.tools.keys`)."""
    return keys.key_files(ctx.plan.ostree.gpg_keys, scratch)


def pull_with_retries(ctx: BuildContext, repo: Path) -> None:
    """Pull, retrying network failures with backoff, all within one network deadline.

    Never retried: a signature that does not verify (trying again cannot make
    it verify), a pull past its deadline, and a signal (`Interrupted` is no
    BuildError: the build stops at once).
    """
    o = ctx.plan.ostree
    attempts = o.pull_retries + 1
    deadline = NetworkLimits.from_env().start()
    for attempt in range(1, attempts + 1):
        try:
            ostree.pull(repo, o.remote, o.ref, o.commit, deadline=deadline)
            return
        except (GpgVerifyError, NetworkDeadline):
            raise
        except BuildError as err:
            if attempt == attempts:
                raise
            delay = min(backoff(attempt), max(deadline.remaining(), 0))
            note = (f"pull attempt {attempt}/{attempts} failed ({err.message}); "
                    f"retrying in {delay:.0f} s")
            log.warning("%s", note)
            ctx.monitor.message(note)
            time.sleep(delay)


def commit_date(repo: Path, commit: str) -> str:
    """The commit's time as the legacy manifest wrote it (`2025-11-28T09:40:00+0000`)."""
    stamp = ostree.commit_info(repo, commit).timestamp
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def write_fragment(ctx: BuildContext, repo: Path) -> None:
    o = ctx.plan.ostree
    fragment = {
        "ostree": {
            "remote": o.remote,
            "url": o.url,
            "ref": o.ref,
            "ref_deploy": ctx.deploy_ref,
            "commit": ctx.commit,
            "version": ostree.metadata(repo, ctx.commit, "version"),
            # The legacy builder's keys, for its manifest's readers.
            "os": o.os,
            "deploy_url": o.deploy_url or o.url,
            "date": commit_date(repo, ctx.commit),
            "collection-id": (o.collection_id or None) if o.p2p else None,
        }
    }
    ctx.dirs.manifest.mkdir(parents=True, exist_ok=True)
    path = ctx.dirs.manifest / "ostree.json"
    path.write_text(json.dumps(fragment, indent=2, sort_keys=True) + "\n")


def run_ostree_stage(ctx: BuildContext) -> None:
    o = ctx.plan.ostree
    if not o.url or not o.ref:
        raise BuildError("ostree.url and ostree.ref must be set", step="remote")
    repo = ctx.dirs.ostree_repo

    ctx.step = "remote"
    ctx.monitor.step(f"remote {o.remote} → {o.url}")
    ostree.init_repo(repo, CACHE_REPO_MODE)
    with tempfile.TemporaryDirectory(prefix="eib-keys-") as scratch:
        keys = key_files(ctx, Path(scratch))
        url = ctx.reveal(o.url)
        ostree.add_remote(repo, o.remote, url, keys=keys, private=url != o.url,
                          verify=o.gpg_verify)

    ctx.step = "pull"
    ctx.monitor.step(f"pull {o.ref}" + (f"@{o.commit}" if o.commit else ""))
    with watching(ctx.monitor, "ostree pull", lambda: tree_bytes(repo / "objects")):
        pull_with_retries(ctx, repo)
    remote_ref = f"{o.remote}:{o.ref}"
    if o.commit:
        # A pinned pull fetches the commit; the cache's ref follows the pin.
        ostree.set_ref(repo, remote_ref, o.commit)
    ctx.commit = ostree.rev_parse(repo, remote_ref)
    log.info("pulled %s = %s", remote_ref, ctx.commit)

    ctx.step = "refs"
    ctx.monitor.step("refs and summary")
    if ctx.deploy_ref != o.ref:
        ostree.set_ref(repo, f"{o.remote}:{ctx.deploy_ref}", ctx.commit)
    ostree.update_summary(repo)

    ctx.step = "prune"
    ctx.monitor.step(f"prune (keep {o.prune_keep})")
    ostree.prune(repo, o.prune_keep)

    ctx.step = "manifest"
    write_fragment(ctx, repo)
