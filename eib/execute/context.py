"""The state one build carries from stage to stage.

Stages receive a `BuildContext` instead of globals so that each stage module
stays a plain function of (plan, directories, what earlier stages found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eib.execute.progress import Monitor
from eib.model.plan import Plan


def cache_repo(cache: Path) -> Path:
    """The cache repo (mode bare): kept between builds, so pulls are incremental."""
    return cache / "ostree" / "repo"


@dataclass(frozen=True)
class BuildDirs:
    """Where a build reads and writes; every path is absolute."""

    cache: Path
    work: Path
    output: Path

    @property
    def ostree_repo(self) -> Path:
        return cache_repo(self.cache)

    @property
    def content(self) -> Path:
        """EIB_CONTENTDIR: content hooks keep downloads here across builds."""
        return self.cache / "content"

    @property
    def sysroot(self) -> Path:
        return self.work / "sysroot"

    @property
    def tmp(self) -> Path:
        return self.work / "tmp"

    @property
    def manifest(self) -> Path:
        """EIB_MANIFESTDIR: every stage drops its JSON fragments here."""
        return self.work / "manifest"


@dataclass
class BuildContext:
    plan: Plan
    dirs: BuildDirs
    monitor: Monitor
    dry_run: bool = False
    env: dict[str, str] = field(default_factory=dict)  # the real EIB_* values
    commit: str = ""
    deployment: Path | None = None
    stage: str = ""
    step: str = ""
    cache_keys: dict[str, str] = field(default_factory=dict)  # stage → stage-cache key
    use_cache: bool = False  # this run reuses and stores stage results
    assemble_disk: bool = True  # False: the image stage stops after deployment and Flatpaks
    # This run's secrets (eib.secrets.SecretValues), fetched on first use.
    secrets: Any = None
    # Where host-side hooks run (eib.execute.buildroot.Buildroot), made on first use.
    buildroot: Any = None

    def reveal(self, text: str) -> str:
        """`text` with its `<secret:...>` tokens replaced: only for handing to a tool."""
        return self.secrets.reveal(text) if self.secrets is not None else text

    def revealed_plan(self) -> Plan:
        """The plan with tokens replaced, for steps that pass values on; never saved."""
        if self.secrets is None:
            return self.plan
        from eib.secrets import reveal_plan

        return reveal_plan(self.plan, self.secrets)

    @property
    def os_var(self) -> Path:
        return self.dirs.sysroot / "ostree" / "deploy" / self.plan.ostree.os / "var"

    @property
    def deploy_ref(self) -> str:
        return self.plan.ostree.ref_deploy or self.plan.ostree.ref
