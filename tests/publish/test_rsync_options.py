"""An rsync target's host or user that ssh would read as an option is refused at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eib.errors import UserError
from eib.model.recipe import RsyncTarget
from eib.publish import publish_build


@pytest.mark.parametrize("field", ["host", "user"])
def test_host_or_user_starting_with_a_dash_never_reaches_ssh(
    field: str, output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    canary = tmp_path / "proxy-command-ran"
    hostile = f"-oProxyCommand=touch {canary}"
    values = {"host": "127.0.0.1", "user": "root", field: hostile}
    # A saved plan is not validated again: build the target as one would load it.
    target = RsyncTarget.model_construct(kind="rsync", path=str(tmp_path / "www"), **values)
    with pytest.raises(UserError) as info:
        publish_build(plan_for([target]), output_dir, {}, settings=pub.fast)
    assert info.value.key == f"publish.targets[0].{field}"
    assert "ssh would read it as an option" in info.value.message
    assert not canary.exists()
