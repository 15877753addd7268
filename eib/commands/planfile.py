"""Saved plans named on the command line (`--plan FILE`, `plan --diff FILE`).

The file is read here with the safe reader (`eib.limits.read_input`): a FIFO,
directory or device is refused from its `fstat` instead of blocking or
reading forever, and a file past MAX_PLAN_BYTES is refused unread. The model
only parses the bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eib.limits import MAX_PLAN_BYTES, read_input
from eib.model.plan import Plan, parse_plan, parse_plan_data


def read_plan(path: Path) -> Plan:
    """The validated plan saved in `path`; bad input is a UserError naming the file."""
    return parse_plan(read_input(path, limit=MAX_PLAN_BYTES), str(path))


def read_plan_data(path: Path) -> dict[str, Any]:
    """The JSON data of the plan saved in `path`, unvalidated (for `plan --diff`)."""
    return parse_plan_data(read_input(path, limit=MAX_PLAN_BYTES), str(path))
