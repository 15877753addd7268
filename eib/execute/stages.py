"""Every stage, defined once: when it applies, what it receives, the tools it
calls, the steps it shows, and the function that runs it.

The compiler lists a stage's steps in the plan from here, the runner calls
its function from here, and the stage cache keys it by exactly what it
receives from here (osbuild's idea: a stage's identity is the hash of what
it is given), so the three can no longer drift apart.  To add a stage, add a
`StageSpec` to `STAGES` and a module with its run function.

This module is imported by the compiler: it holds data and small functions
of the Plan only; run functions are named as `module:function` and imported
when a build calls them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eib.model.plan import HookStep, NativeStep, Plan, Step
from eib.model.recipe import PublishTarget

if TYPE_CHECKING:
    from eib.execute.context import BuildContext

COMPRESSORS = {"gz": "pigz", "xz": "xz", "zstd": "zstd"}


@dataclass(frozen=True)
class StageSpec:
    """One stage (or a separately cached part of one)."""

    name: str
    job: str
    receives: tuple[str, ...]
    """Plan fields (dotted paths) the stage reads: its cache key covers exactly these."""
    hook_groups: tuple[str, ...]
    """Hook groups it runs (their names and sha256s are part of what it receives)."""
    tools: Callable[[Plan], list[str]]
    """The system tools it calls: their versions are part of its cache key."""
    steps: Callable[[Plan], list[Step]]
    """What `eib plan` shows of it."""
    run: str
    """`module:function` taking a BuildContext; '' for a part its stage runs itself."""
    runtime: tuple[str, ...] = ()
    """Inputs only known while building (the pulled `commit`) that its key covers too."""
    cached: bool = False
    previous: str | None = None
    """The stage whose result it builds on: its key chains through that stage's key."""
    part_of: str | None = None

    def run_function(self) -> Callable[[BuildContext], Any]:
        module, _, function = self.run.partition(":")
        fn: Callable[[BuildContext], Any] = getattr(importlib.import_module(module), function)
        return fn


NATIVE_WORK: dict[NativeStep, str] = {
    "flatpak-fetch": "nothing: eib's Flatpak install fetches what it installs",
    "flatpak-install": "eib installs the Flatpaks here",
    "checksums": "eib writes SHA256SUMS here",
    "publish-s3": "eib publishes to the S3 targets here",
    "publish-rsync": "eib publishes to the rsync targets here",
}
# The publish target kind each native publish step takes the place of.
PUBLISH_NATIVES: dict[NativeStep, str] = {"publish-s3": "s3", "publish-rsync": "rsync"}


def hook_steps(plan: Plan, group: str) -> list[Step]:
    return hook_steps_of(plan.hooks_of(group))


def installs_flatpaks(plan: Plan) -> bool:
    """eib installs at least one ref (the one predicate the stage and its cache use).

    Not when the recipe's checkout has its own `50-flatpak.chroot`: that hook
    installs them, as it did for the legacy builder, and eib must not again.
    """
    fp = plan.flatpak
    return (fp.enable and plan.overridden("flatpak-install") is None
            and any(r.enable and (r.apps or r.runtimes) for r in fp.remotes.values()))


def publish_at(plan: Plan, native: NativeStep) -> list[PublishTarget]:
    """The targets a native publish step publishes at its place among the publish hooks."""
    if plan.native_step(native) is None:
        return []
    return [t for t in plan.publish.targets if t.kind == PUBLISH_NATIVES[native]]


def publish_first(plan: Plan) -> list[PublishTarget]:
    """The targets published before the publish hooks: those no hook takes the place of.

    A kind whose legacy hook the checkout ships itself (`45-publish-s3`) is
    published by that hook alone, never twice.
    """
    taken = {kind for native, kind in PUBLISH_NATIVES.items()
             if plan.native_step(native) is not None or plan.overridden(native) is not None}
    return [t for t in plan.publish.targets if t.kind not in taken]


def _ostree_steps(plan: Plan) -> list[Step]:
    o = plan.ostree
    return [Step(name="pull", description=f"pull {o.commit or o.ref} from {o.url}")]


def _image_tools(plan: Plan) -> list[str]:
    tools = ["ostree", "mke2fs", "sfdisk", "mkfs.vfat", "mcopy"]
    tools.append(COMPRESSORS[plan.image.compression])
    if installs_flatpaks(plan):
        tools.append("flatpak")
    if plan.image.qcow2 or plan.image.vm_image:
        tools.append("qemu-img")
    if plan.image.iso:
        tools.append("xorriso")
    return tools


def _flatpak_step(plan: Plan) -> list[Step]:
    fp = plan.flatpak
    remotes = [n for n, r in sorted(fp.remotes.items()) if r.enable and (r.apps or r.runtimes)]
    count = sum(len(fp.remotes[n].apps) + len(fp.remotes[n].runtimes) for n in remotes)
    return [Step(name="flatpak", description=f"install {count} refs from {', '.join(remotes)}")]


def _image_steps(plan: Plan) -> list[Step]:
    o, img = plan.ostree, plan.image
    flatpak = _flatpak_step(plan) if installs_flatpaks(plan) else []
    # 50-flatpak.chroot's place shows the install, or that there is none.
    work = {**NATIVE_WORK, "flatpak-install": (
        flatpak[0].description if flatpak else "no Flatpaks to install: nothing to do")}
    steps = [
        Step(name="deploy", description=f"deploy {o.commit or o.ref} as os '{o.os}'"),
        *hook_steps_of(plan.hooks_of("content"), work),
        *hook_steps_of(plan.hooks_of("image"), work),
    ]
    if plan.native_step("flatpak-install") is None:
        steps.extend(flatpak)
    steps.append(Step(name="disk", description=f"assemble {img.partition_table} disk image"))
    steps.append(Step(name="compress", description=f"compress with {img.compression}"))
    steps.append(Step(name="checksum", description="sha256 of each image"))
    if img.signing_keyid:
        steps.append(Step(name="sign", description=f"detached signatures by {img.signing_keyid}"))
    for flag, name, label in (("qcow2", "qcow2", "qcow2 image"), ("iso", "iso", "ISO image"),
                              ("boot_zip", "boot.zip", "boot.zip"),
                              ("vm_image", "ovf.zip", "OVF zip: a VirtualBox/VMware VM")):
        if getattr(img, flag):
            steps.append(Step(name=name, description=label))
    return steps


def _manifest_steps(plan: Plan) -> list[Step]:
    return [
        Step(name="basic-info", description="product, variant and builder facts"),
        *hook_steps(plan, "manifest"),
        Step(name="merge", description="merge JSON fragments into the manifest"),
    ]


def _publish_steps(plan: Plan) -> list[Step]:
    def target_steps(targets: list[PublishTarget]) -> list[Step]:
        return [Step(name=f"{t.kind} {t.describe()}", description=f"publish to {t.kind}")
                for t in targets]

    steps = target_steps(publish_first(plan))
    for hook in plan.hooks_of("publish"):
        if hook.native in PUBLISH_NATIVES:
            assert hook.native is not None
            kind = PUBLISH_NATIVES[hook.native]
            steps.extend(target_steps(publish_at(plan, hook.native)) or [Step(
                name=f"hook {hook.name}", description=f"no {kind} target: nothing to do")])
        else:
            steps.extend(hook_steps_of([hook]))
    return steps


def hook_steps_of(
    hooks: list[HookStep], work: Mapping[NativeStep, str] = NATIVE_WORK
) -> list[Step]:
    def described(h: HookStep) -> str:
        return work[h.native] if h.native else f"{h.group} hook ({h.found_in})"

    return [Step(name=f"hook {h.name}", description=described(h)) for h in hooks]


def _no_tools(plan: Plan) -> list[str]:
    return []


OSTREE = StageSpec(
    name="ostree",
    job="pull the ref (GPG-verified) into the cache repo",
    receives=("ostree", "eib_version"),
    hook_groups=(),
    tools=lambda plan: ["ostree"],
    steps=_ostree_steps,
    run="eib.execute.ostree_stage:run_ostree_stage",
    runtime=("commit",),
    cached=True,
)
IMAGE = StageSpec(
    name="image",
    job="content hooks, deploy, image hooks, Flatpaks, disk image, compression, checksums",
    receives=("build", "ostree", "image", "flatpak", "extra", "env", "outputs", "secrets",
              "source_date_epoch", "eib_version"),
    hook_groups=("content", "image"),
    tools=_image_tools,
    steps=_image_steps,
    run="eib.execute.image_stage:run_image_stage",
    runtime=("commit",),
    cached=True,
    previous="ostree",
)
FLATPAK = StageSpec(
    name="flatpak",
    job="install the Flatpaks into the deployment (cached apart from the OS and hooks)",
    receives=("flatpak", "build.arch", "ostree.p2p", "eib_version"),
    hook_groups=(),
    tools=lambda plan: ["flatpak"],
    steps=_flatpak_step,
    run="",
    cached=True,
    part_of="image",
)
MANIFEST = StageSpec(
    name="manifest",
    job="merge the JSON fragments of every stage and hook into the manifest",
    receives=("build", "env", "outputs", "extra", "eib_version"),
    hook_groups=("manifest",),
    tools=_no_tools,
    steps=_manifest_steps,
    run="eib.execute.manifest:run_manifest_stage",
    cached=True,
    previous="image",
)
PUBLISH = StageSpec(
    name="publish",
    job="upload the output dir atomically to every target, then the publish hooks",
    receives=("publish", "outputs", "secrets"),
    hook_groups=("publish",),
    tools=_no_tools,
    steps=_publish_steps,
    run="eib.execute.publish_stage:run_publish_stage",
)
ERROR = StageSpec(
    name="error",
    job="on any failure: error hooks, clean up, publish the build log",
    receives=("publish", "outputs"),
    hook_groups=("error",),
    tools=_no_tools,
    steps=lambda plan: hook_steps(plan, "error"),
    run="eib.execute.error_stage:run_error_stage",
)

STAGES: tuple[StageSpec, ...] = (OSTREE, IMAGE, FLATPAK, MANIFEST, PUBLISH, ERROR)
BY_NAME = {spec.name: spec for spec in STAGES}
# The stages a build runs in order (the error stage runs only on failure).
BUILD_STAGES = tuple(s.name for s in STAGES if s.part_of is None and s is not ERROR)
CACHED_STAGES = tuple(s.name for s in STAGES if s.cached and s.part_of is None)
CACHED_PARTS = tuple(s.name for s in STAGES if s.cached and s.part_of is not None)
PLAN_STAGES = tuple(s for s in STAGES if s.part_of is None)


def spec(name: str) -> StageSpec:
    return BY_NAME[name]


def hook_inputs(plan: Plan, groups: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """The hooks a stage receives, by identity (name, sha256, how it runs)."""

    def ident(h: HookStep) -> dict[str, Any]:
        return {"name": h.name, "sha256": h.sha256, "chroot": h.chroot,
                "executable": h.executable, "native": h.native}

    return {group: [ident(h) for h in plan.hooks_of(group)] for group in groups}


def received(plan: Plan, paths: tuple[str, ...]) -> dict[str, Any]:
    """The plan's values at each dotted path (`build.arch`), as JSON data."""
    data = plan.model_dump(mode="json")
    out: dict[str, Any] = {}
    for path in paths:
        node: Any = data
        for part in path.split("."):
            node = node[part]
        out[path] = node
    return out
