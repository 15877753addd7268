"""What a variant's Flatpaks weigh, and which apps to drop to make it lighter.

Reads the remotes' signed summaries (no install, nothing written) and
resolves the refs exactly as the build does, so the listed runtimes and
extensions are the ones the image gets. Shared by `eib apps` and the legacy
launcher's `--show-apps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from eib.flatpak.resolve import Selection
from eib.model.plan import Plan

GroupBy = Literal["runtime", "nature"]
NATURES = ("locale-specific", "generic", "runtime")


@dataclass(frozen=True)
class AppRow:
    """One ref of the image with its sizes (bytes, from the remote's summary)."""

    ref: str
    kind: str
    name: str
    branch: str
    remote: str
    download_size: int
    installed_size: int
    runtime: str
    nature: str
    requested: bool
    needed_by: tuple[str, ...]

    def label(self) -> str:
        return f"{self.name}//{self.branch}"


@dataclass
class AppsReport:
    """Every ref a variant installs; `deps` maps a ref to the refs it pulls in."""

    arch: str
    rows: list[AppRow]
    deps: dict[str, list[str]] = field(default_factory=dict)

    def row(self, ref: str) -> AppRow:
        return next(r for r in self.rows if r.ref == ref)

    @property
    def download_size(self) -> int:
        return sum(r.download_size for r in self.rows)

    @property
    def installed_size(self) -> int:
        return sum(r.installed_size for r in self.rows)


@dataclass(frozen=True)
class TrimStep:
    drop: str
    saves: int
    also_removes: tuple[str, ...]


@dataclass(frozen=True)
class TrimProposal:
    target: int
    steps: tuple[TrimStep, ...]

    @property
    def saved(self) -> int:
        return sum(s.saves for s in self.steps)

    @property
    def reached(self) -> bool:
        return self.saved >= self.target


def locale_tags(plan: Plan) -> set[str]:
    """The locales that make an app locale-specific: configured ones and the personality's."""
    tags = set(plan.flatpak.locales)
    personality = plan.build.personality
    if personality and personality != "base":
        tags.add(personality)
    tags |= {t.split("_")[0] for t in tags}
    return {t for t in tags if t}


def nature_of(name: str, kind: str, tags: set[str]) -> str:
    """'runtime', 'locale-specific' (id ends in a locale, e.g. `org.x.Guide.pt_BR`) or 'generic'."""
    if kind == "runtime":
        return "runtime"
    last = name.rsplit(".", 1)[-1]
    candidates = {last, last.split("_")[0], name.rsplit("_", 1)[-1]}
    return "locale-specific" if candidates & tags else "generic"


def report_from_selection(selection: Selection, plan: Plan) -> AppsReport:
    tags = locale_tags(plan)
    deps: dict[str, list[str]] = {ref: [] for ref in selection.refs}
    for ref, selected in selection.refs.items():
        for parent in selected.needed_by:
            deps[parent].append(ref)
    rows = []
    for ref, selected in selection.refs.items():
        info = selected.info
        runtime = ""
        if info.kind == "app":
            runtime = next((d for d in deps[ref] if selection.refs[d].reason == "runtime"), "")
        rows.append(
            AppRow(
                ref=ref,
                kind=info.kind,
                name=info.name,
                branch=info.branch,
                remote=info.remote,
                download_size=info.download_size,
                installed_size=info.installed_size,
                runtime=runtime,
                nature=nature_of(info.name, info.kind, tags),
                requested=selected.requested,
                needed_by=tuple(selected.needed_by),
            )
        )
    return AppsReport(selection.arch, rows, deps)


def apps_report(plan: Plan) -> AppsReport:
    """Resolve the plan's Flatpaks against the live remotes (policies apply, nothing installed)."""
    from eib.flatpak.install import read_remotes
    from eib.flatpak.resolve import resolve

    remotes, summaries, arch = read_remotes(plan)
    return report_from_selection(resolve(remotes, summaries, arch), plan)


def _group_key(report: AppsReport, row: AppRow, group_by: GroupBy) -> str:
    if group_by == "nature":
        return row.nature
    if row.kind == "app":
        return row.runtime or "(no runtime)"
    # A runtime heads its own group; its extensions join their parent's group.
    seen: set[str] = set()
    current = row
    while current.kind == "runtime" and current.needed_by and current.ref not in seen:
        seen.add(current.ref)
        parent = report.row(current.needed_by[0])
        if parent.kind == "app":
            return parent.runtime or "(no runtime)"
        current = parent
    return current.ref


def groups(report: AppsReport, group_by: GroupBy) -> dict[str, list[AppRow]]:
    """Rows by group: runtime ref, or nature in NATURES order; runtimes before apps in a group."""
    out: dict[str, list[AppRow]] = {}
    if group_by == "nature":
        out = {n: [] for n in NATURES}
    for row in report.rows:
        out.setdefault(_group_key(report, row, group_by), []).append(row)
    for name, rows in out.items():
        rows.sort(key=lambda r: (r.kind != "runtime", r.ref != name, r.ref))
    return {k: v for k, v in out.items() if v}


def _closure(report: AppsReport, roots: list[str]) -> set[str]:
    keep: set[str] = set()
    todo = list(roots)
    while todo:
        ref = todo.pop()
        if ref not in keep:
            keep.add(ref)
            todo.extend(report.deps.get(ref, []))
    return keep


def trim(report: AppsReport, target: int) -> TrimProposal:
    """Apps to drop to save at least `target` download bytes, the largest saving first.

    Dropping an app also drops what only it needed (its runtime, extensions);
    a runtime another remaining app needs is never dropped.
    """
    requested = [r.ref for r in report.rows if r.requested]
    kept = set(_closure(report, requested))
    remaining = list(requested)
    steps: list[TrimStep] = []
    saved = 0
    while saved < target and remaining:
        best: tuple[int, str, set[str]] | None = None
        for ref in remaining:
            if report.row(ref).kind == "runtime" and any(
                ref in _closure(report, [o]) for o in remaining if o != ref
            ):
                continue
            after = _closure(report, [o for o in remaining if o != ref])
            removed = kept - after
            saves = sum(report.row(r).download_size for r in removed)
            if best is None or saves > best[0] or (saves == best[0] and ref < best[1]):
                best = (saves, ref, removed)
        if best is None:
            break
        saves, ref, removed = best
        steps.append(TrimStep(ref, saves, tuple(sorted(removed - {ref}))))
        remaining.remove(ref)
        kept -= removed
        saved += saves
    return TrimProposal(target, tuple(steps))


def format_size(size: int) -> str:
    """Sizes as GLib (and so `flatpak`) prints them: SI units, one decimal."""
    if size < 1000:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def render_text(report: AppsReport, group_by: GroupBy, proposal: TrimProposal | None) -> str:
    grouped = groups(report, group_by)
    width = max([len(r.label()) for r in report.rows] + [20]) + 2
    rw = max([len(r.remote) for r in report.rows] + [6]) + 2
    lines: list[str] = []
    header = f"  {'kind':<8}{'ref':<{width}}{'remote':<{rw}}{'download':>12}{'installed':>12}"
    for title, rows in grouped.items():
        lines.append(f"{title}:")
        lines.append(header)
        for r in rows:
            lines.append(
                f"  {r.kind:<8}{r.label():<{width}}{r.remote:<{rw}}"
                f"{format_size(r.download_size):>12}{format_size(r.installed_size):>12}"
            )
        down = sum(r.download_size for r in rows)
        inst = sum(r.installed_size for r in rows)
        lines.append(
            f"  {'subtotal':<{8 + width + rw}}{format_size(down):>12}{format_size(inst):>12}"
        )
        lines.append("")
    lines.append(
        f"total ({len(report.rows)} refs, {report.arch}): download "
        f"{format_size(report.download_size)} ({report.download_size} bytes), installed "
        f"{format_size(report.installed_size)} ({report.installed_size} bytes)"
    )
    if proposal is not None:
        lines.append("")
        lines.extend(render_trim(report, proposal))
    return "\n".join(lines) + "\n"


def render_trim(report: AppsReport, proposal: TrimProposal) -> list[str]:
    lines = [f"to save {format_size(proposal.target)} ({proposal.target} bytes) of download, drop:"]
    for step in proposal.steps:
        also = f" (with {', '.join(step.also_removes)})" if step.also_removes else ""
        lines.append(f"  {report.row(step.drop).label()}: {format_size(step.saves)}{also}")
    verdict = "enough" if proposal.reached else "NOT enough: the target is larger than all apps"
    lines.append(f"saves {format_size(proposal.saved)} ({proposal.saved} bytes): {verdict}")
    return lines


def _row_json(row: AppRow) -> dict[str, Any]:
    return {
        "ref": row.ref,
        "kind": row.kind,
        "name": row.name,
        "branch": row.branch,
        "remote": row.remote,
        "download_size": row.download_size,
        "installed_size": row.installed_size,
        "runtime": row.runtime,
        "nature": row.nature,
        "requested": row.requested,
        "needed_by": list(row.needed_by),
    }


def report_json(
    report: AppsReport, group_by: GroupBy, proposal: TrimProposal | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "arch": report.arch,
        "group_by": group_by,
        "groups": [
            {
                "name": name,
                "refs": [_row_json(r) for r in rows],
                "download_size": sum(r.download_size for r in rows),
                "installed_size": sum(r.installed_size for r in rows),
            }
            for name, rows in groups(report, group_by).items()
        ],
        "download_size": report.download_size,
        "installed_size": report.installed_size,
    }
    if proposal is not None:
        data["trim"] = {
            "target": proposal.target,
            "saved": proposal.saved,
            "reached": proposal.reached,
            "drop": [
                {"ref": s.drop, "saves": s.saves, "also_removes": list(s.also_removes)}
                for s in proposal.steps
            ],
        }
    return data


def show_apps(
    plan: Plan, *, group_by: GroupBy = "runtime", trim_bytes: int | None = None,
    as_json: bool = False,
) -> str:
    """The whole report as text or JSON: the core of `eib apps` and `--show-apps`."""
    import json

    report = apps_report(plan)
    proposal = trim(report, trim_bytes) if trim_bytes is not None else None
    if as_json:
        return json.dumps(report_json(report, group_by, proposal), indent=2) + "\n"
    return render_text(report, group_by, proposal)
