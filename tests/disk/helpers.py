"""Small readers the disk tests share: sfdisk, debugfs, mtools, gpg, sha256sum."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any


def sh(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}): {proc.stderr}"
    return proc.stdout


def sfdisk_json(image: Path) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(sh("sfdisk", "--json", image))["partitiontable"]
    return table


def part_offset(table: dict[str, Any], number: int) -> int:
    return int(table["partitions"][number - 1]["start"]) * int(table.get("sectorsize", 512))


def debugfs(image: Path, offset: int, request: str) -> str:
    return sh("debugfs", "-R", request, f"{image}?offset={offset}")


def mdir(image: Path, offset: int, path: str) -> str:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    return sh("mdir", "-b", "-i", f"{image}@@{offset}", f"::{path}", env=env)


def mcopy_out(image: Path, offset: int, path: str, dest: Path) -> bytes:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    sh("mcopy", "-n", "-i", f"{image}@@{offset}", f"::{path}", dest, env=env)
    return dest.read_bytes()


def gpg_verify(home: Path, signature: Path, data: Path) -> str:
    proc = subprocess.run(
        ["gpg", "--batch", "--status-fd", "1", "--verify", str(signature), str(data)],
        capture_output=True,
        text=True,
        env=dict(os.environ, GNUPGHOME=str(home)),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[GNUPG:] GOODSIG" in proc.stdout and "[GNUPG:] VALIDSIG" in proc.stdout
    return proc.stdout


def sha256sum_check(checksum: Path, cwd: Path) -> None:
    out = sh("sha256sum", "-c", checksum, cwd=cwd)
    assert out.strip().endswith(": OK"), out
