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

PLAN_FORMAT: Literal[2] = 2
# Run-time dirs are arguments of `eib run`, never plan content: a value the recipe
# derives from `${build:cachedir}` holds this token, which the executor replaces.
CACHEDIR_TOKEN = "@EIB_CACHEDIR@"
REDACTED = "<redacted>"


# Built when defined (no defer_build, annotations as real objects) so that
# Plan reuses the schemas of its parts and of the recipe sections.
class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NativeStep = Literal["flatpak-fetch", "flatpak-install", "checksums", "publish-s3",
                     "publish-rsync"]
# Legacy hook names whose work eib does itself, at that hook's place in its group,
# when neither the localdir nor the recipe's (checkout's) hooks/ has its own file.
NATIVE_HOOKS: dict[tuple[str, str], NativeStep] = {
    ("content", "50-flatpak"): "flatpak-fetch",
    ("image", "50-flatpak.chroot"): "flatpak-install",
    ("publish", "42-sha256sums"): "checksums",
    ("publish", "45-publish-s3"): "publish-s3",
    ("publish", "50-publish"): "publish-rsync",
}


class HookStep(PlanModel):
    """One hook to run, carried by content so the plan builds where the recipe is not.

    A `native` step names work eib does itself in the hook's place (its
    Flatpak install, SHA256SUMS, a publish target kind); it carries no file.
    """

    group: Literal["content", "image", "manifest", "publish", "error"]
    name: str
    found_in: str = Field(
        description="Which hooks dir the lookup found it in (recipe, localdir, srcdir, builtin)"
    )
    sha256: str
    chroot: bool = Field(description="Runs inside the deployment (name ends in .chroot)")
    executable: bool = Field(description="Runs directly; otherwise through bash with eib.sh")
    content: str = Field(description="The hook file: UTF-8 text, or base64 when `encoding` says")
    encoding: Literal["utf-8", "base64"] = "utf-8"
    native: NativeStep | None = Field(
        default=None, description="eib's own step run in this hook's place (no file)"
    )

    def data(self) -> bytes:
        """The hook file's bytes."""
        if self.encoding == "base64":
            import base64

            return base64.b64decode(self.content)
        return self.content.encode()


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
    """Where a secret's value comes from at run time; the value never enters the plan.

    `env`: the variable `where`.  `file`: the file `where`, handed over as a
    file (its path).  `file-content`: the text of the file `where`.
    `file-key`: the value at `key` in the YAML or legacy INI file `where` (an
    inline recipe value is one, in its recipe file); a legacy option's
    `${...}` references expand through `interpolate`, which holds public
    values and `<secret:NAME>` tokens only.
    """

    name: str
    source: Literal["env", "file", "file-content", "file-key"]
    where: str = Field(description="Environment variable or file holding the value")
    key: list[str] = Field([], description="Path to the value inside the file")
    interpolate: dict[str, str] = Field(
        {}, description="Legacy INI: each ${reference} of the value, with secrets as tokens"
    )


class PublishPlan(PlanModel):
    path: str = Field(description="Prefix of this build below each target (interpolated)")
    targets: list[PublishTarget]


class Plan(PlanModel):
    """A compiled, validated build of one variant."""

    format: Literal[2] = PLAN_FORMAT
    eib_version: str
    recipe: str = Field(description="Name of the top recipe file or legacy config dir (a label)")
    source_date_epoch: int | None = Field(
        description="Time of everything the build stamps (SOURCE_DATE_EPOCH, or the locked "
        "commit's time); None: the build's clock"
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
    config: dict[str, dict[str, str]] = Field(
        {},
        description="The merged config as legacy INI sections (section → option → text), "
        "private values as tokens: what hooks read through EIB_TMPCONFIG/EIB_TMPFULLCONFIG",
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

    def native_step(self, native: NativeStep) -> HookStep | None:
        """The hook whose place `native` takes, if the hooks list it."""
        return next((h for h in self.hooks if h.native == native), None)

    def overridden(self, native: NativeStep) -> HookStep | None:
        """The recipe's or localdir's own file under `native`'s legacy name: it does
        that work instead of eib (a legacy checkout's own 50-flatpak.chroot)."""
        group, name = next(k for k, v in NATIVE_HOOKS.items() if v == native)
        return next((h for h in self.hooks_of(group) if h.name == name and h.native is None),
                    None)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def load_plan_json(text: str) -> Plan:
    return Plan.model_validate_json(text)


def parse_plan_data(raw: bytes, name: str) -> dict[str, Any]:
    """A saved plan's bytes as JSON data; a non-plan file is a UserError naming `name`.

    The command layer reads the file (regular files only, size-capped:
    `eib.commands.planfile`); the model only parses what it is given.
    """
    from eib.errors import UserError

    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UserError(f"{name}:{err.lineno}: not a plan JSON file: {err.msg}") from None
    except UnicodeDecodeError:
        raise UserError("not a plan JSON file (not UTF-8 text)", key=name) from None
    if not isinstance(data, dict) or "stages" not in data:
        raise UserError("not a plan JSON file (no 'stages')", key=name)
    return data


def parse_plan(raw: bytes, name: str) -> Plan:
    """A saved plan (`eib plan --json`, `<outversion>.plan.json`) from its bytes, validated."""
    from pydantic import ValidationError

    from eib.errors import UserError

    data = parse_plan_data(raw, name)
    if data.get("format") != PLAN_FORMAT:
        raise UserError(
            f"plan format {data.get('format')!r} is not {PLAN_FORMAT}",
            key=name,
            hint="make the plan again with this eib (`eib plan --json`)",
        )
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"not a valid plan: {where}: {first['msg']}", key=name) from None


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
