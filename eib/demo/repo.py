"""Committing the demo tree into a signed archive-mode OSTree repo.

The commit time is a constant and ownership, modes and xattrs are fixed, so
the same inputs give the same commit checksum on any machine; the GPG
signature lives in detached metadata and does not change it.
"""

from __future__ import annotations

from pathlib import Path

from eib.demo.gpgkey import stop_agent
from eib.tools.run import run

# The demo OS's branch, in the usual os/<product>/<platform>/<branch> form.
OSTREE_REF = "os/eib-demo/amd64/master"

# 2024-01-01T00:00:00Z: the demo's fixed commit time (SOURCE_DATE_EPOCH-style).
COMMIT_TIMESTAMP = 1704067200


def commit_tree(
    tree: Path,
    repo: Path,
    *,
    gpg_homedir: Path,
    key_id: str,
    version: str,
    subject: str,
    ref: str = OSTREE_REF,
) -> str:
    """Commit `tree` to `repo` (created as an archive repo when missing) on
    `ref`, sign it and its summary; returns the commit checksum."""
    if not (repo / "config").is_file():
        repo.mkdir(parents=True, exist_ok=True)
        run(["ostree", "init", "--mode=archive-z2", f"--repo={repo}"])
    try:
        checksum = run(
            [
                "ostree",
                "commit",
                f"--repo={repo}",
                f"--branch={ref}",
                f"--tree=dir={tree}",
                f"--subject={subject}",
                f"--add-metadata-string=version={version}",
                f"--timestamp=@{COMMIT_TIMESTAMP}",
                "--owner-uid=0",
                "--owner-gid=0",
                "--no-xattrs",
                f"--gpg-sign={key_id}",
                f"--gpg-homedir={gpg_homedir}",
            ]
        ).stdout.strip()
        run(
            [
                "ostree",
                "summary",
                f"--repo={repo}",
                "--update",
                f"--gpg-sign={key_id}",
                f"--gpg-homedir={gpg_homedir}",
            ]
        )
    finally:
        stop_agent(gpg_homedir)
    return checksum
