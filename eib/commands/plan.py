"""`eib plan` and `eib validate`: compile and show, never build."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from eib.compile.compiler import CompileRequest, CompileResult, compile_plan
from eib.errors import UserError
from eib.load.layers import VARIANT_ATTRS
from eib.variant import check_variant_value


def run_validate(request: CompileRequest) -> None:
    result = compile_plan(request)
    for warning in result.plan.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    sys.stdout.write(f"ok: {result.plan.outputs.outversion} {result.plan.digest}\n")


def run_plan(
    request: CompileRequest,
    *,
    as_json: bool,
    explain: str | None,
    diff: Path | None,
    matrix: list[str],
) -> None:
    if matrix:
        if request.lock is not None:
            raise UserError("--lock pins one variant; use `eib lock --matrix` for many")
        _matrix(request, matrix, as_json)
        return
    # The saved plan is read first: a bad --diff file is refused before any work.
    saved = None
    if diff is not None and not explain:
        from eib.commands.planfile import read_plan_data

        saved = read_plan_data(diff)
    result = compile_plan(request)
    if explain:
        from eib.compile.explain import explain_key

        sys.stdout.write(explain_key(result, explain, as_json=as_json))
    elif saved is not None:
        from eib.compile.plandiff import diff_plans

        sys.stdout.write(diff_plans(saved, json.loads(result.plan.to_json())))
    elif as_json:
        sys.stdout.write(result.plan.to_json())
    else:
        from eib.compile.render import print_plan

        print_plan(result)


def parse_matrix(items: list[str]) -> list[tuple[str, list[str]]]:
    axes = []
    for item in items:
        attr, sep, values = item.partition("=")
        if not sep or attr not in VARIANT_ATTRS or not values:
            raise UserError(
                f"--matrix {item!r}: expected ATTR=v1,v2 with ATTR one of "
                f"{', '.join(VARIANT_ATTRS)}"
            )
        axes.append((attr, [v for v in values.split(",") if v]))
        for value in axes[-1][1]:
            check_variant_value(attr, value, key=f"--matrix {attr}")
    return axes


def matrix_variants(base: Mapping[str, str], items: list[str]) -> list[dict[str, str]]:
    axes = parse_matrix(items)
    names = [a for a, _ in axes]
    return [
        {**base, **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*(v for _, v in axes))
    ]


def compile_matrix(request: CompileRequest, items: list[str]) -> list[CompileResult]:
    """One compile per variant of the cross product (each with the request's lock, if any)."""
    return [
        compile_plan(request.for_variant(v)) for v in matrix_variants(request.variant, items)
    ]


def _matrix(request: CompileRequest, items: list[str], as_json: bool) -> None:
    results = compile_matrix(request, items)
    if as_json:
        plans = [json.loads(r.plan.to_json()) for r in results]
        sys.stdout.write(json.dumps(plans, sort_keys=True, indent=2) + "\n")
        return
    for r in results:
        p = r.plan
        sys.stdout.write(f"{p.outputs.outversion}  {p.digest}  {p.outputs.compressed}\n")
