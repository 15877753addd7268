"""The farm's one call into the compiler: recipe + variants → plans.

Everything is compiled on the submitting machine before anything is
queued, so a bad recipe or a variant missing from the lock fails there,
with the usual one-line message and exit status 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eib.model.plan import Plan

if TYPE_CHECKING:
    from eib.compile.compiler import CompileRequest


def compile_plans(request: CompileRequest, matrix: list[str]) -> list[Plan]:
    """One plan per variant of the matrix (or the one variant), pinned by the request's lock.

    Without a lock the build version is the clock's (or SOURCE_DATE_EPOCH's),
    so two submits a second apart make different plans; with it, the version
    is the pinned commit's time and a second submit makes the same plans.
    """
    from eib.commands.plan import compile_matrix
    from eib.compile.compiler import compile_plan

    if matrix:
        return [result.plan for result in compile_matrix(request, matrix)]
    return [compile_plan(request).plan]


def variant_label(plan: Plan) -> str:
    """product-branch-arch-platform-personality: how people name a variant."""
    b = plan.build
    return f"{b.product}-{b.branch}-{b.arch}-{b.platform}-{b.personality}"
