"""`eib apps`: the real command against the fixture repos' real sizes."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .conftest import Repos

Cmd = Callable[..., subprocess.CompletedProcess[str]]

APPS = """
locales: [pt]
remotes:
  main:
    url: "{url}/main"
    gpg_key: "{key}"
    default_branch: stable
    apps: [org.eib.Hello//beta, org.eib.Clock, org.eib.Big, org.eib.Medium, org.eib.Guide.pt,
           org.eib.Legacy, org.eib.Extra]
    allow_extra_data: [org.eib.Extra]
  second:
    url: "{url}/second"
    gpg_key: "{key}"
    apps: [org.eib.Notes]
"""


def summary_sizes(repo: Path) -> dict[str, tuple[int, int]]:
    """ref → (installed, download) as `ostree summary --view` prints Flatpak's xa.cache.

    Flatpak stores both sizes big-endian; ostree prints them as native integers.
    """
    text = subprocess.run(["ostree", f"--repo={repo}", "summary", "--view"],
                          capture_output=True, text=True, check=True).stdout
    cache = text[text.index("xa.cache:"):]
    out = {}
    for ref, inst, down in re.findall(
        r"'((?:app|runtime)/[^']+)': \((?:uint64 )?(\d+), (?:uint64 )?(\d+),", cache
    ):
        swap = lambda v: int.from_bytes(int(v).to_bytes(8, "little"), "big")  # noqa: E731
        out[ref] = (swap(inst), swap(down))
    return out


@pytest.fixture
def apps_json(recipe: Callable[[str], Path], eib_cli: Cmd) -> Callable[..., dict[str, Any]]:
    path = recipe(APPS)

    def run(*args: str) -> dict[str, Any]:
        proc = eib_cli("apps", path, "--json", *args)
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    return run


def _rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["ref"]: r for g in data["groups"] for r in g["refs"]}


def test_json_sizes_are_the_repos_real_sizes(
    apps_json: Callable[..., dict[str, Any]], repos: Repos
) -> None:
    data = apps_json()
    rows = _rows(data)
    real = {**summary_sizes(repos.main), **summary_sizes(repos.second)}
    assert set(rows) == {
        "app/org.eib.Hello/x86_64/beta", "app/org.eib.Clock/x86_64/stable",
        "app/org.eib.Big/x86_64/stable", "app/org.eib.Medium/x86_64/stable",
        "app/org.eib.Guide.pt/x86_64/stable", "app/org.eib.Legacy/x86_64/stable",
        "app/org.eib.Extra/x86_64/stable", "app/org.eib.Notes/x86_64/stable",
        "runtime/org.eib.Platform/x86_64/1", "runtime/org.eib.Platform.Locale/x86_64/1",
        "runtime/org.eib.OtherPlatform/x86_64/1",
    }
    for ref, row in rows.items():
        assert (row["installed_size"], row["download_size"]) == real[ref], ref
    assert data["download_size"] == sum(real[r][1] for r in rows)
    assert data["installed_size"] == sum(real[r][0] for r in rows)
    # Incompressible payloads dominate their apps' download sizes.
    assert rows["app/org.eib.Big/x86_64/stable"]["download_size"] > 400_000
    # Grouped by runtime: every app sits in its runtime's group, with subtotals.
    groups = {g["name"]: g for g in data["groups"]}
    assert set(groups) == {"runtime/org.eib.Platform/x86_64/1",
                           "runtime/org.eib.OtherPlatform/x86_64/1"}
    other = groups["runtime/org.eib.OtherPlatform/x86_64/1"]
    assert [r["ref"] for r in other["refs"]] == ["runtime/org.eib.OtherPlatform/x86_64/1",
                                                 "app/org.eib.Legacy/x86_64/stable"]
    assert other["download_size"] == sum(real[r["ref"]][1] for r in other["refs"])
    assert rows["app/org.eib.Notes/x86_64/stable"]["remote"] == "second"
    assert rows["app/org.eib.Notes/x86_64/stable"]["runtime"] == "runtime/org.eib.Platform/x86_64/1"


def test_table_matches_flatpak_remote_info(
    recipe: Callable[[str], Path], eib_cli: Cmd, flatpak_cmd: Cmd, repos: Repos,
    tmp_path: Path,
) -> None:
    proc = eib_cli("apps", recipe(APPS))
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    # What flatpak itself says about the same refs, from a scratch installation.
    inst = tmp_path / "scratch-installation"
    added = flatpak_cmd(inst, "remote-add", "--system", f"--gpg-import={repos.key_file}",
                        "main", (repos.main).as_uri())
    assert added.returncode == 0, added.stderr
    for ref, label in [
        ("app/org.eib.Big/x86_64/stable", "org.eib.Big//stable"),
        ("app/org.eib.Hello/x86_64/beta", "org.eib.Hello//beta"),
        ("runtime/org.eib.OtherPlatform/x86_64/1", "org.eib.OtherPlatform//1"),
    ]:
        info = flatpak_cmd(inst, "remote-info", "--system", "main", ref)
        assert info.returncode == 0, info.stderr
        text = info.stdout.replace("\xa0", " ")  # GLib puts a no-break space before units
        download = re.search(r"Download: (.+)", text)
        installed = re.search(r"Installed: (.+)", text)
        assert download and installed
        line = next(ln for ln in table.splitlines() if f" {label} " in ln)
        assert line.split()[0] in ("app", "runtime")
        assert line.rstrip().endswith(f"{download.group(1).strip():>12}"
                                      f"{installed.group(1).strip():>12}"), line
    assert "runtime/org.eib.OtherPlatform/x86_64/1:" in table
    total = json.loads(eib_cli("apps", recipe(APPS), "--json").stdout)["download_size"]
    assert f"({total} bytes)" in table


def test_group_by_nature(apps_json: Callable[..., dict[str, Any]]) -> None:
    data = apps_json("--group-by", "nature")
    groups = {g["name"]: sorted(r["name"] for r in g["refs"]) for g in data["groups"]}
    assert groups == {
        "locale-specific": ["org.eib.Guide.pt"],
        "generic": ["org.eib.Big", "org.eib.Clock", "org.eib.Extra", "org.eib.Hello",
                    "org.eib.Legacy", "org.eib.Medium", "org.eib.Notes"],
        "runtime": ["org.eib.OtherPlatform", "org.eib.Platform", "org.eib.Platform.Locale"],
    }
    assert [g["name"] for g in data["groups"]] == ["locale-specific", "generic", "runtime"]


def test_trim_drops_largest_saving_first(apps_json: Callable[..., dict[str, Any]]) -> None:
    rows = _rows(apps_json())
    size = {ref: row["download_size"] for ref, row in rows.items()}
    legacy = size["app/org.eib.Legacy/x86_64/stable"] + size[
        "runtime/org.eib.OtherPlatform/x86_64/1"]
    big = size["app/org.eib.Big/x86_64/stable"]
    # Dropping Legacy frees its runtime too: the largest single saving.
    assert legacy > big > size["app/org.eib.Medium/x86_64/stable"]
    target = legacy + 1
    trim = apps_json("--trim", str(target))["trim"]
    assert trim["drop"] == [
        {"ref": "app/org.eib.Legacy/x86_64/stable", "saves": legacy,
         "also_removes": ["runtime/org.eib.OtherPlatform/x86_64/1"]},
        {"ref": "app/org.eib.Big/x86_64/stable", "saves": big, "also_removes": []},
    ]
    assert trim["saved"] == legacy + big and trim["reached"] is True


def test_trim_never_drops_a_runtime_still_needed(
    apps_json: Callable[..., dict[str, Any]],
) -> None:
    data = apps_json("--trim", str(10**12))
    rows = _rows(data)
    trim = data["trim"]
    assert trim["reached"] is False
    assert trim["saved"] == data["download_size"]
    remaining = {ref for ref, row in rows.items() if row["requested"]}
    for step in trim["drop"]:
        remaining.discard(step["ref"])
        for freed in step["also_removes"]:
            assert not set(rows[freed]["needed_by"]) & remaining, (step, remaining)
    platform_step = next(s for s in trim["drop"]
                         if "runtime/org.eib.Platform/x86_64/1" in s["also_removes"])
    assert platform_step is trim["drop"][-1] or all(
        rows[s["ref"]]["runtime"] != "runtime/org.eib.Platform/x86_64/1"
        for s in trim["drop"][trim["drop"].index(platform_step) + 1:]
    )


def test_text_trim_and_branch_choice(recipe: Callable[[str], Path], eib_cli: Cmd) -> None:
    proc = eib_cli("apps", recipe(APPS), "--trim", "1000")
    assert proc.returncode == 0, proc.stderr
    assert "to save 1.0 kB (1000 bytes) of download, drop:" in proc.stdout
    assert "  org.eib.Legacy//stable: " in proc.stdout
    assert "(with runtime/org.eib.OtherPlatform/x86_64/1)" in proc.stdout
    # `app//beta` wins over the remote's default branch.
    assert " org.eib.Hello//beta " in proc.stdout
    assert "org.eib.Hello//stable" not in proc.stdout


def test_apps_reports_policy_errors(recipe: Callable[[str], Path], eib_cli: Cmd) -> None:
    path = recipe("""
        remotes:
          main:
            url: "{url}/main"
            gpg_key: "{key}"
            apps: [org.eib.Helo]
    """)
    proc = eib_cli("apps", path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "eib: error: flatpak.remotes.main.apps: app 'org.eib.Helo' (x86_64) not found on "
        "remote 'main' (did you mean org.eib.Hello"
    )
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    bad = eib_cli("apps", path, "--group-by", "size")
    assert bad.returncode == 2 and "--group-by must be 'runtime' or 'nature'" in bad.stderr
