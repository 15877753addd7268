"""The deployment examples in docs/farm/ are valid: YAML that parses into the
objects the documentation names, and a systemd unit that runs the worker."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs" / "farm"


def documents() -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for path in sorted(DOCS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def test_kubernetes_manifests_parse_and_cover_each_architecture() -> None:
    docs = documents()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}  # type: ignore[index]
    for arch in ("amd64", "arm64"):
        assert ("Deployment", f"eib-farm-worker-{arch}") in kinds
        assert ("ScaledObject", f"eib-farm-worker-{arch}") in kinds
    assert ("Secret", "eib-farm") in kinds and ("Deployment", "flower") in kinds
    for doc in docs:
        if doc["kind"] == "Deployment" and str(doc["metadata"]["name"]).startswith(  # type: ignore[index]
                "eib-farm-worker-"):
            arch = str(doc["metadata"]["name"]).rsplit("-", 1)[1]  # type: ignore[index]
            pod = doc["spec"]["template"]["spec"]  # type: ignore[index]
            container = pod["containers"][0]
            assert container["command"][:5] == ["eib", "farm", "worker", "--queue", arch]
            assert container["securityContext"]["privileged"] is True
            assert pod["nodeSelector"]["kubernetes.io/arch"] == arch
        if doc["kind"] == "ScaledObject":
            trigger = doc["spec"]["triggers"][0]  # type: ignore[index]
            target = doc["spec"]["scaleTargetRef"]["name"]  # type: ignore[index]
            assert trigger["type"] == "redis"
            assert trigger["metadata"]["listName"] == target.rsplit("-", 1)[1]


def test_systemd_unit_runs_the_worker_for_its_queue() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DOCS / "eib-farm-worker@.service").read_text().replace("\\\n", " "))
    exec_start = unit["Service"]["ExecStart"]
    assert "eib farm worker --queue %i" in exec_start
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["EnvironmentFile"] == "/etc/eib/farm.env"
