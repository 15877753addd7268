"""Which refs a build installs, and the policies that may refuse them.

Resolution follows what `flatpak install` will do — each app's runtime (from
the app's remote first, then the other remotes in recipe order) and the
extensions Flatpak pulls with an app or runtime — so the exclude and
extra-data policies see dependencies too, and every refusal happens before
anything is written.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
from dataclasses import dataclass, field

from eib.errors import UserError
from eib.flatpak.metadata import RefInfo, RemoteSummary
from eib.flatpak.remotes import RemoteConfig

log = logging.getLogger("eib.flatpak")

SKIPPED_EXTENSION_SUFFIXES = (".Debug", ".Sources")


@dataclass
class Selected:
    """A ref the build installs and why."""

    info: RefInfo
    requested: bool
    reason: str
    needed_by: list[str] = field(default_factory=list)
    locale_subset: bool = False

    @property
    def ref(self) -> str:
        return self.info.ref


@dataclass
class Selection:
    """Every ref of one build, requested ones first, in a stable order."""

    arch: str
    refs: dict[str, Selected] = field(default_factory=dict)

    def requested(self) -> list[Selected]:
        return [s for s in self.refs.values() if s.requested]

    def add(self, selected: Selected) -> Selected:
        known = self.refs.get(selected.ref)
        if known is None:
            self.refs[selected.ref] = selected
            return selected
        for who in selected.needed_by:
            if who not in known.needed_by:
                known.needed_by.append(who)
        known.requested = known.requested or selected.requested
        return known


def matches(pattern: str, info: RefInfo) -> bool:
    """Whether an exclude / allow pattern (`name`, `name//branch`, full ref, globs) names `info`."""
    rest = pattern
    if pattern.startswith(("app/", "runtime/")):
        kind, rest = pattern.split("/", 1)
        if kind != info.kind:
            return False
    parts = [*rest.split("/"), "", ""]
    name, arch, branch = parts[0], parts[1], parts[2]
    return (
        fnmatch.fnmatchcase(info.name, name)
        and (not arch or fnmatch.fnmatchcase(info.arch, arch))
        and (not branch or fnmatch.fnmatchcase(info.branch, branch))
    )


def parse_request(entry: str, kind: str, arch: str) -> tuple[str, str, str]:
    """(name, arch, branch) of an `apps`/`runtimes` entry; branch '' when not given."""
    rest = entry
    if entry.startswith(("app/", "runtime/")):
        _, rest = entry.split("/", 1)
    parts = [*rest.split("/"), "", ""]
    return parts[0], parts[1] or arch, parts[2]


def _pick(
    remote: RemoteConfig, summary: RemoteSummary, entry: str, kind: str, arch: str
) -> RefInfo:
    key = f"{remote.key}.{'apps' if kind == 'app' else 'runtimes'}"
    name, ref_arch, branch = parse_request(entry, kind, arch)
    candidates = summary.find(kind, name, ref_arch)
    if not candidates:
        known = sorted(summary.names(kind, ref_arch))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.8)
        hint = f"did you mean {', '.join(close)}?" if close else "no similar names"
        raise UserError(
            f"{kind} '{name}' ({ref_arch}) not found on remote '{remote.name}'", key=key, hint=hint
        )
    branches = sorted(c.branch for c in candidates)
    default = remote.default_branch or summary.default_branch
    wanted = branch or (default if default in branches else "")
    if not wanted and len(candidates) == 1:
        wanted = candidates[0].branch
    for candidate in candidates:
        if candidate.branch == wanted:
            return candidate
    if branch:
        message = f"{kind} '{name}' has no branch '{branch}' on remote '{remote.name}'"
    else:
        message = f"{kind} '{name}' has several branches on remote '{remote.name}'"
    raise UserError(message, key=key, hint=f"use {name}//BRANCH; branches: {', '.join(branches)}")


def _find_runtime(
    ref: str, origin: str, remotes: list[RemoteConfig], summaries: dict[str, RemoteSummary]
) -> RefInfo | None:
    order = [origin] + [r.name for r in remotes if r.name != origin]
    for name in order:
        info = summaries[name].refs.get(ref)
        if info is not None:
            return info
    return None


def _extensions(info: RefInfo, summary: RemoteSummary) -> list[tuple[RefInfo, bool]]:
    """The extensions Flatpak installs with `info`: (ref, locale-subset)."""
    found: list[tuple[RefInfo, bool]] = []
    keyfile = info.keyfile()
    for section in keyfile.sections():
        if not section.startswith("Extension "):
            continue
        ext = section.split(" ", 1)[1]
        opts = keyfile[section]
        if ext.endswith(SKIPPED_EXTENSION_SUFFIXES) or opts.get("no-autodownload") == "true":
            continue
        if opts.get("download-if") or opts.get("autoprune-unless"):
            log.info("%s: extension %s is conditional, not installed", info.ref, ext)
            continue
        versions = opts.get("versions") or opts.get("version") or info.branch
        branches = {v for v in versions.split(";") if v}
        subdirs = opts.get("subdirectories") == "true"
        subset = opts.get("locale-subset") == "true"
        for ref in sorted(summary.refs.values(), key=lambda r: r.ref):
            if ref.kind != "runtime" or ref.arch != info.arch or ref.branch not in branches:
                continue
            named = ref.name == ext or (subdirs and ref.name.startswith(ext + "."))
            if named and not ref.name.endswith(SKIPPED_EXTENSION_SUFFIXES):
                found.append((ref, subset))
    return found


def _add_with_deps(
    selection: Selection,
    selected: Selected,
    remotes: list[RemoteConfig],
    summaries: dict[str, RemoteSummary],
) -> None:
    entry = selection.add(selected)
    if entry is not selected:
        return
    info = selected.info
    keyfile = info.keyfile()
    if info.kind == "app":
        runtime = keyfile.get("Application", "runtime", fallback="")
        if runtime:
            ref = f"runtime/{runtime}"
            found = _find_runtime(ref, info.remote, remotes, summaries)
            if found is None:
                raise UserError(
                    f"{info.ref} needs {ref}, which no enabled remote offers",
                    key=f"flatpak.remotes.{info.remote}.apps",
                )
            _add_with_deps(
                selection,
                Selected(found, requested=False, reason="runtime", needed_by=[info.ref]),
                remotes,
                summaries,
            )
    for ext, subset in _extensions(info, summaries[info.remote]):
        _add_with_deps(
            selection,
            Selected(ext, requested=False, reason="extension", needed_by=[info.ref],
                     locale_subset=subset),
            remotes,
            summaries,
        )


def resolve(
    remotes: list[RemoteConfig], summaries: dict[str, RemoteSummary], arch: str
) -> Selection:
    """Every ref to install; UserError for an unknown, excluded or extra-data ref."""
    picked: list[Selected] = []
    for remote in remotes:
        summary = summaries[remote.name]
        for kind, entries in (("runtime", remote.runtimes), ("app", remote.apps)):
            for entry in entries:
                info = _pick(remote, summary, entry, kind, arch)
                picked.append(Selected(info, requested=True, reason="requested"))
    selection = Selection(arch)
    for selected in picked:
        _add_with_deps(selection, selected, remotes, summaries)
    check_policies(selection, remotes)
    return selection


def _chain(selection: Selection, ref: str) -> str:
    """'app X' or 'app X (through runtime Y)' — who pulls `ref` in."""
    seen: list[str] = []
    todo = list(selection.refs[ref].needed_by)
    while todo:
        who = todo.pop(0)
        if who in seen:
            continue
        seen.append(who)
        todo.extend(selection.refs[who].needed_by)
    return ", ".join(seen)


def check_policies(selection: Selection, remotes: list[RemoteConfig]) -> None:
    by_name = {r.name: r for r in remotes}
    for selected in selection.refs.values():
        remote = by_name[selected.info.remote]
        excluded = [p for p in remote.exclude if matches(p, selected.info)]
        if excluded:
            if selected.requested:
                reason = "it is listed to install"
            else:
                reason = f"it is needed by {_chain(selection, selected.ref)}"
            raise UserError(
                f"{selected.ref} is excluded ('{excluded[0]}') but {reason}",
                key=f"{remote.key}.exclude",
            )
        if selected.info.has_extra_data and not any(
            matches(p, selected.info) for p in remote.allow_extra_data
        ):
            needed = "" if selected.requested else f" (needed by {_chain(selection, selected.ref)})"
            raise UserError(
                f"{selected.ref}{needed} downloads extra data from outside the repo "
                "and is not allowed to",
                key=f"{remote.key}.allow_extra_data",
                hint=f"add {selected.info.name} to allow_extra_data to accept it",
            )
