"""`eib plan` and `eib validate`: compile and show, never build."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from eib.compile import CompileResult, compile_recipe
from eib.errors import UserError
from eib.load.layers import VARIANT_ATTRS


def run_validate(
    recipe: Path, variant: dict[str, str], *, sets: list[str], localdir: Path | None
) -> None:
    result = compile_recipe(recipe, variant, sets, localdir)
    for warning in result.plan.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    sys.stdout.write(f"ok: {result.plan.outputs.outversion} {result.plan.digest}\n")


def run_plan(
    recipe: Path,
    variant: dict[str, str],
    *,
    sets: list[str],
    localdir: Path | None,
    as_json: bool,
    explain: str | None,
    diff: Path | None,
    matrix: list[str],
    lock: Path | None,
) -> None:
    build_version = None
    if lock is not None:
        if matrix:
            raise UserError("--lock pins one variant; use `eib lock --matrix` for many")
        from eib.lockfile import locked_inputs

        pins, build_version = locked_inputs(lock, recipe, variant, sets=sets, localdir=localdir)
        sets = [*sets, *pins]
    if matrix:
        _matrix(recipe, variant, sets, localdir, matrix, as_json)
        return
    result = compile_recipe(recipe, variant, sets, localdir, build_version=build_version)
    if explain:
        from eib.explain import explain_key

        sys.stdout.write(explain_key(result, explain, as_json=as_json))
    elif diff is not None:
        from eib.plandiff import diff_plans

        sys.stdout.write(diff_plans(_read_plan_json(diff), json.loads(result.plan.to_json())))
    elif as_json:
        sys.stdout.write(result.plan.to_json())
    else:
        from eib.render import print_plan

        print_plan(result)


def _read_plan_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"plan file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: not a plan JSON file: {err.msg}") from None
    if not isinstance(data, dict) or "stages" not in data:
        raise UserError(f"{path}: not a plan JSON file (no 'stages')")
    return data


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
    return axes


def matrix_variants(base: dict[str, str], items: list[str]) -> list[dict[str, str]]:
    axes = parse_matrix(items)
    names = [a for a, _ in axes]
    return [
        {**base, **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*(v for _, v in axes))
    ]


def compile_matrix(
    recipe: Path,
    base: dict[str, str],
    sets: list[str],
    localdir: Path | None,
    items: list[str],
) -> list[CompileResult]:
    return [compile_recipe(recipe, v, sets, localdir) for v in matrix_variants(base, items)]


def _matrix(
    recipe: Path,
    base: dict[str, str],
    sets: list[str],
    localdir: Path | None,
    items: list[str],
    as_json: bool,
) -> None:
    results = compile_matrix(recipe, base, sets, localdir, items)
    if as_json:
        plans = [json.loads(r.plan.to_json()) for r in results]
        sys.stdout.write(json.dumps(plans, sort_keys=True, indent=2) + "\n")
        return
    for r in results:
        p = r.plan
        sys.stdout.write(f"{p.outputs.outversion}  {p.digest}  {p.outputs.compressed}\n")
