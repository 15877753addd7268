"""The publish stage: put a finished output dir on every target, all or nothing.

Every target first gets its `.inprogress` marker, then every file, and only
when all targets hold the whole build are the markers removed (or the local
temp dirs renamed into place).  If anything fails, every target started is
cleaned up, so a build is never half-visible anywhere; the error stage then
publishes the build log alone with `publish_error_log`.  Cleaning up removes
only what this publish added: objects a target held before it started (an
earlier publish of the same build) are never deleted, whether the publish
failed or was interrupted.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from eib import paths
from eib.digest import sha256_file
from eib.errors import BuildError, UserError
from eib.interrupt import Interrupted
from eib.model.plan import Plan
from eib.model.recipe import PublishTarget
from eib.model.recipe import RsyncTarget as RsyncSettings
from eib.model.recipe import S3Target as S3Settings
from eib.publish.checksums import (
    LEGACY_SIGNATURE_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    copy_signature,
    sign_detached,
    write_sums,
)
from eib.publish.targets import (
    MARKER,
    STAGE,
    ProgressCallback,
    ProgressMeter,
    PublishFile,
    Target,
    TransferSettings,
)

log = logging.getLogger("eib.publish")

# Files eib itself writes while publishing: never listed in SHA256SUMS.
OWN_FILES = {MARKER, SUMS_NAME, SIGNATURE_NAME, LEGACY_SIGNATURE_NAME}
OWN_FILES |= {name + ".tmp" for name in OWN_FILES}


@dataclass(frozen=True)
class TargetReport:
    kind: str
    location: str
    files: tuple[str, ...]
    bytes: int


@dataclass(frozen=True)
class PublishReport:
    """What was published where; empty `targets` when the recipe names none."""

    path: str
    targets: tuple[TargetReport, ...] = ()
    files: tuple[str, ...] = ()
    signed: bool = False


def build_prefix(plan: Plan) -> str:
    """The build's path below each target, refused when it could escape or be empty.

    Failure cleanup deletes this path recursively, so it must name one build.
    """
    raw = plan.publish.path.strip().strip("/")
    parts = PurePosixPath(raw).parts
    if "${" in raw:
        raise UserError(
            f"'{plan.publish.path}' still holds an unresolved ${{...}} reference",
            key="publish.path",
        )
    if not raw or any(p in ("..", ".") for p in parts) or "\\" in raw:
        raise UserError(
            f"'{plan.publish.path}' is not a usable build path",
            key="publish.path",
            hint="use a relative path such as nightly/${build:product}/${build:build_version}",
        )
    return "/".join(parts)


def collect_files(output_dir: Path, log_name: str, workdir: Path) -> list[PublishFile]:
    """Every file of the output dir, sorted, with its sha256.

    The build log is still being written while the build is published (this
    stage logs into it), so a snapshot of it is what gets published.
    """
    if not output_dir.is_dir():
        raise BuildError(f"output dir {output_dir} does not exist", stage=STAGE)
    files: list[PublishFile] = []
    for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
        name = path.relative_to(output_dir).as_posix()
        if name in OWN_FILES:
            continue
        source = path
        if name == log_name:
            source = workdir / "log-snapshot"
            shutil.copyfile(path, source)
        files.append(PublishFile(name, source, source.stat().st_size, sha256_file(source)))
    return files


def checksum_files(plan: Plan, output_dir: Path, files: list[PublishFile]) -> list[PublishFile]:
    """Write SHA256SUMS (and its signature when a key is set) into the output dir."""
    sums = output_dir / SUMS_NAME
    write_sums(sums, [(f.name, f.sha256) for f in files])
    extra = [PublishFile(SUMS_NAME, sums, sums.stat().st_size, sha256_file(sums))]
    signature = output_dir / SIGNATURE_NAME
    legacy = output_dir / LEGACY_SIGNATURE_NAME
    if plan.image.signing_keyid:
        sign_detached(sums, signature, plan.image.signing_keyid, plan.image.gpg_homedir)
        copy_signature(signature, legacy)
        extra += [PublishFile(p.name, p, p.stat().st_size, sha256_file(p))
                  for p in (signature, legacy)]
    else:
        signature.unlink(missing_ok=True)
        legacy.unlink(missing_ok=True)
    return extra


def write_build_sums(plan: Plan, output_dir: Path) -> tuple[str, ...]:
    """SHA256SUMS (and its signatures) for a build that goes to no target.

    A build without targets, or a dry run, still leaves the list that
    downloaders and mirrors check the files with; the names it wrote are
    returned.
    """
    with tempfile.TemporaryDirectory(prefix="eib-sums-") as tmp:
        files = collect_files(output_dir, plan.outputs.log, Path(tmp))
        written = checksum_files(plan, output_dir, files)
    log.info("wrote %s over %d files", SUMS_NAME, len(files))
    return tuple(f.name for f in written)


def open_target(
    target: PublishTarget,
    index: int,
    prefix: str,
    secrets: Mapping[str, str],
    workdir: Path,
    settings: TransferSettings,
    state_dir: Path,
) -> Target:
    """The Target for one configured target; each kind imports its client lazily."""
    key = f"publish.targets[{index}]"
    if isinstance(target, S3Settings):
        from eib.publish.s3 import S3Target

        return S3Target(target, prefix, secrets, workdir, settings, key=key)
    if isinstance(target, RsyncSettings):
        from eib.publish.rsync import RsyncTarget

        return RsyncTarget(target, prefix, secrets, workdir, settings, state_dir, key=key)
    from eib.publish.local import LocalTarget

    return LocalTarget(target, prefix)


def open_targets(
    plan: Plan,
    prefix: str,
    secrets: Mapping[str, str],
    workdir: Path,
    settings: TransferSettings,
    state_dir: Path,
) -> list[Target]:
    opened: list[Target] = []
    try:
        for index, target in enumerate(plan.publish.targets):
            opened.append(
                open_target(target, index, prefix, secrets, workdir, settings, state_dir)
            )
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(targets: list[Target]) -> None:
    for t in targets:
        t.close()


def abort_all(targets: list[Target]) -> list[str]:
    """Clean up every started target; the problems are returned, not raised."""
    problems: list[str] = []
    for t in reversed(targets):
        try:
            t.abort()
        except BuildError as err:
            log.error("%s; remove it by hand (it still has its %s marker)", err.message, MARKER)
            problems.append(err.message)
    return problems


def publish_build(
    plan: Plan,
    output_dir: Path,
    secrets: Mapping[str, str],
    *,
    progress: ProgressCallback | None = None,
    settings: TransferSettings | None = None,
    state_dir: Path | None = None,
) -> PublishReport:
    """Publish every file of `output_dir` to every target, or raise BuildError.

    On failure nothing of this build stays on any target (unless the cleanup
    itself fails, which is logged and leaves the `.inprogress` marker).
    """
    settings = settings or TransferSettings()
    prefix = build_prefix(plan)
    with tempfile.TemporaryDirectory(prefix="eib-publish-") as tmp:
        workdir = Path(tmp)
        files = collect_files(output_dir, plan.outputs.log, workdir)
        files += checksum_files(plan, output_dir, files)
        names = tuple(f.name for f in files)
        signed = SIGNATURE_NAME in names
        if not plan.publish.targets:
            log.info("no publish targets configured; wrote %s only", SUMS_NAME)
            return PublishReport(prefix, (), names, signed)
        total = sum(f.size for f in files)
        targets = open_targets(plan, prefix, secrets, workdir, settings,
                               state_dir or paths.cache_dir())
        started: list[Target] = []
        current = targets[0]
        try:
            for current in targets:
                log.info(
                    "publishing %d files (%d bytes) to %s", len(files), total, current.location
                )
                current.begin()
                started.append(current)
            for current in targets:
                current.upload(files, ProgressMeter(current.location, total, progress))
            for current in targets:
                current.finish()
        except (BuildError, KeyboardInterrupt, Interrupted) as err:
            # Each target removes only what this publish added: a re-publish
            # stopped halfway leaves the build published before intact.
            problems = abort_all(started)
            if isinstance(err, Interrupted):
                err.located(f"{STAGE}/{current.kind}")
            if not isinstance(err, BuildError):
                raise
            if problems:
                cleanup = " (cleaning up failed: " + "; ".join(problems) + ")"
            elif started:
                cleanup = " (the partial upload was deleted)"
            else:
                cleanup = ""
            raise BuildError(err.message + cleanup, stage=STAGE, step=current.kind) from err
        finally:
            close_all(targets)
        reports = tuple(TargetReport(t.kind, t.location, names, total) for t in targets)
        for t in targets:
            log.info("published %s", t.location)
        return PublishReport(prefix, reports, names, signed)


def publish_error_log(
    plan: Plan,
    output_dir: Path,
    secrets: Mapping[str, str],
    *,
    settings: TransferSettings | None = None,
    state_dir: Path | None = None,
) -> PublishReport:
    """Publish the build log alone to every target (the error stage).

    Every target is tried even when one fails; the failures are raised
    together at the end as one BuildError.
    """
    settings = settings or TransferSettings()
    prefix = build_prefix(plan)
    source = output_dir / plan.outputs.log
    if not source.is_file():
        log.warning("no build log at %s; nothing to publish", source)
        return PublishReport(prefix)
    with tempfile.TemporaryDirectory(prefix="eib-publish-") as tmp:
        workdir = Path(tmp)
        snapshot = workdir / "log-snapshot"
        shutil.copyfile(source, snapshot)
        log_file = PublishFile(
            plan.outputs.log, snapshot, snapshot.stat().st_size, sha256_file(snapshot)
        )
        targets = open_targets(plan, prefix, secrets, workdir, settings,
                               state_dir or paths.cache_dir())
        reports: list[TargetReport] = []
        problems: list[str] = []
        try:
            for t in targets:
                try:
                    t.put_log(log_file)
                except BuildError as err:
                    log.error("publishing the build log to %s failed: %s", t.location, err.message)
                    problems.append(f"{t.location}: {err.message}")
                    continue
                log.info("published %s to %s", log_file.name, t.location)
                reports.append(TargetReport(t.kind, t.location, (log_file.name,), log_file.size))
        finally:
            close_all(targets)
        if problems:
            raise BuildError(
                "publishing the build log failed: " + "; ".join(problems), stage="error"
            )
        return PublishReport(prefix, tuple(reports), (log_file.name,), False)
