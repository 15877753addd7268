"""Which demo OS a build or `eib demo-os` uses: one switch, so callers need
not know the builders."""

from __future__ import annotations

from pathlib import Path

DEMO_OSES = ("busybox", "debian")


def ensure_demo_os(demo_dir: Path, os_name: str) -> Path:
    """Build (or reuse) the named demo OS in `demo_dir`; returns the root to serve."""
    if os_name == "debian":
        from eib.demo.debian import ensure_debian_dir

        return ensure_debian_dir(demo_dir).root
    from eib.demo.cache import ensure_demo_dir

    return ensure_demo_dir(demo_dir).root
