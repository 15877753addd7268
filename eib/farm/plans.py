"""The farm's one call into the compiler: recipe + variants → plans.

Everything is compiled on the submitting machine before anything is
queued, so a bad recipe or a variant missing from the lock fails there,
with the usual one-line message and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

from eib.model.plan import Plan


def compile_plans(
    recipe: Path,
    variant: dict[str, str],
    sets: list[str],
    localdir: Path | None,
    matrix: list[str],
    lock: Path | None,
) -> list[Plan]:
    """One plan per variant of the matrix (or the one variant), pinned by `lock`.

    Without `lock` the build version is the clock's (or SOURCE_DATE_EPOCH's),
    so two submits a second apart make different plans; with it, the version
    is the pinned commit's time and a second submit makes the same plans.
    """
    from eib.commands.plan import matrix_variants
    from eib.compile import compile_recipe

    variants = matrix_variants(variant, matrix) if matrix else [variant]
    plans: list[Plan] = []
    for wanted in variants:
        extra: list[str] = []
        build_version = None
        if lock is not None:
            from eib.lockfile import locked_inputs

            extra, build_version = locked_inputs(lock, recipe, wanted, sets=sets,
                                                 localdir=localdir)
        result = compile_recipe(recipe, wanted, [*sets, *extra], localdir,
                                build_version=build_version)
        plans.append(result.plan)
    return plans


def variant_label(plan: Plan) -> str:
    """product-branch-arch-platform-personality: how people name a variant."""
    b = plan.build
    return f"{b.product}-{b.branch}-{b.arch}-{b.platform}-{b.personality}"
