"""`eib publish` reveals `<secret:NAME>` tokens of its targets only to publish,
and shows no secret in what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from eib.model.plan import SecretRef
from eib.model.recipe import LocalTarget


def test_a_target_named_by_a_secret_publishes_and_is_not_printed(
    output_dir: Path, plan_for: Any, pub: Any, tmp_path: Path
) -> None:
    hidden = tmp_path / "CANARY-hidden-share"
    plan = plan_for([LocalTarget(kind="local", path="<secret:share>")],
                    secrets=[SecretRef(name="share", source="env", where="TEST_SHARE")])
    (output_dir / f"{pub.outversion}.plan.json").write_text(plan.to_json())
    proc = subprocess.run([sys.executable, "-m", "eib.cli", "publish", str(output_dir)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "TEST_SHARE": str(hidden)})
    assert proc.returncode == 0, proc.stderr
    assert (hidden / pub.publish_path / "SHA256SUMS").is_file()
    assert proc.stdout.startswith("published 8 files to <redacted>/")
    assert "CANARY" not in proc.stdout + proc.stderr
