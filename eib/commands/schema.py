"""`eib schema`: the JSON Schema of the recipe format, for editors."""

from __future__ import annotations

import sys


def run_schema() -> None:
    from eib.compile.schema import recipe_schema_json

    sys.stdout.write(recipe_schema_json())
