"""The plan: everything a build will do, as pure data.

The executor consumes only a Plan, never a recipe, so a saved plan
(`eib plan --json > plan.json`, `eib run --plan plan.json`) builds the same
thing.  The digest is the sha256 of the canonical JSON (sorted keys, no
digest field), which makes plans diffable and cache keys cheap.
"""

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eib.model.recipe import (
    Build,
    Demo,
    Flatpak,
    Image,
    Ostree,
    PublishTarget,
)

PLAN_FORMAT: Literal[1] = 1
REDACTED = "<redacted>"


# Built when defined (no defer_build, annotations as real objects) so that
# Plan reuses the schemas of its parts and of the recipe sections.
class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HookStep(PlanModel):
    """One hook file to run, pinned by content."""

    group: Literal["content", "image", "manifest", "publish", "error"]
    name: str
    path: str = Field(description="Absolute path of the hook file found by the lookup order")
    sha256: str
    chroot: bool = Field(description="Runs inside the deployment (name ends in .chroot)")
    executable: bool = Field(description="Runs directly; otherwise through bash with eib.sh")


class Step(PlanModel):
    """A unit of work inside a stage, shown in `eib plan` and in progress output."""

    name: str
    description: str = ""


class Stage(PlanModel):
    name: Literal["ostree", "image", "manifest", "publish", "error"]
    steps: list[Step]


class Outputs(PlanModel):
    """Names of what the build writes, all below the output dir."""

    outversion: str = Field(
        description="<product>-<branch>-<arch>-<platform>.<build_version>.<personality>"
    )
    image: str = Field(description="The raw disk image: <outversion>.img")
    compressed: str = Field(description="<outversion>.img.gz|.xz|.zst")
    manifest: str = Field(description="<outversion>.manifest.json")
    config: str = Field(description="<outversion>.config.yaml (public, secrets redacted)")
    plan: str = Field(description="<outversion>.plan.json")
    log: str = "build.txt"


class SecretRef(PlanModel):
    """Where a secret's value comes from at run time; the value never enters the plan."""

    name: str
    source: Literal["value", "file", "env", "private-ini"]
    where: str = Field(description="File path, environment variable, or recipe file holding it")


class PublishPlan(PlanModel):
    path: str = Field(description="Prefix of this build below each target (interpolated)")
    targets: list[PublishTarget]


class Plan(PlanModel):
    """A compiled, validated build of one variant."""

    format: Literal[1] = PLAN_FORMAT
    eib_version: str
    recipe: str = Field(description="The top recipe file or legacy config dir")
    recipe_dir: str = Field(
        description="Directory of the top recipe (its hooks/ is searched first)"
    )
    build: Build
    ostree: Ostree
    image: Image
    flatpak: Flatpak
    hooks: list[HookStep]
    publish: PublishPlan
    demo: Demo
    secrets: list[SecretRef]
    extra: dict[str, dict[str, Any]]
    env: dict[str, str] = Field(
        description="The EIB_* environment for hooks, private values redacted"
    )
    pass_env: list[str] = Field(
        [], description="Caller's variables hooks also get (hooks.pass_env), by name"
    )
    warnings: list[str] = Field(
        [], description="What the build does that weakens trust (gpg_verify: false)"
    )
    outputs: Outputs
    stages: list[Stage]
    digest: str = ""

    def canonical_json(self) -> str:
        """Sorted, compact-but-readable JSON of everything but the digest."""
        data = self.model_dump(mode="json", exclude={"digest"})
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def with_digest(self) -> "Plan":
        digest = "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()
        return self.model_copy(update={"digest": digest})

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def hooks_of(self, group: str) -> list[HookStep]:
        return [h for h in self.hooks if h.group == group]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def load_plan_json(text: str) -> Plan:
    return Plan.model_validate_json(text)


__all__ = [
    "REDACTED",
    "Build",
    "Flatpak",
    "HookStep",
    "Image",
    "Ostree",
    "Outputs",
    "Plan",
    "Stage",
    "Step",
]
