"""Where eib's own files live: built-in hooks, the shell library, the legacy tree.

eib is installed from its checkout (`pip install -e .`), so these are found
beside the package rather than inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent.parent
BUILTIN_HOOKS_DIR = SOURCE_DIR / "hooks"
SHELL_LIBRARY = SOURCE_DIR / "compat" / "eib.sh"
LEGACY_CONFIG_DIR = SOURCE_DIR / "config"
RECIPES_DIR = SOURCE_DIR / "recipes"
# The host's private build config (signing keyring, ssh key, AWS credentials,
# system config.ini/private.ini): kept at the legacy builder's path so
# existing hosts and hooks work unchanged, whichever recipe format they use.
SYSCONFDIR = "/etc/eos-image-builder"

# Build dirs: arguments of a run (option, else environment, else these), never
# plan content.
# eib runs as root: its work and output dirs live under a root-owned tree
# created 0700, not in world-writable /var/tmp where another local user could
# create them first (see eib.execute.safedirs).
DEFAULT_STATE_DIR = Path("/var/lib/eib")
DEFAULT_CACHE_DIR = Path("/var/cache/eib")
DEFAULT_WORK_DIR = DEFAULT_STATE_DIR / "work"
DEFAULT_OUTPUT_DIR = DEFAULT_STATE_DIR / "out"
CACHE_DIR_ENV = "EIB_CACHE_DIR"
WORK_DIR_ENV = "EIB_WORK_DIR"
OUTPUT_DIR_ENV = "EIB_OUTPUT_DIR"
DEMO_DIR_ENV = "EIB_DEMO_DIR"


def _chosen(option: Path | None, env: str, default: Path | None) -> Path | None:
    value = option or (Path(os.environ[env]) if os.environ.get(env) else default)
    return value.absolute() if value is not None else None


def cache_dir(option: Path | None = None) -> Path:
    """The stage cache, OSTree cache repo and demo dir: `--cache-dir`, $EIB_CACHE_DIR, default."""
    found = _chosen(option, CACHE_DIR_ENV, DEFAULT_CACHE_DIR)
    assert found is not None
    return found


def work_dir(option: Path | None = None) -> Path:
    """Where a build deploys and assembles: `--work-dir`, $EIB_WORK_DIR, default."""
    found = _chosen(option, WORK_DIR_ENV, DEFAULT_WORK_DIR)
    assert found is not None
    return found


def output_dir(option: Path | None, work: Path) -> Path:
    """Where a build's outputs go: `--output-dir`, $EIB_OUTPUT_DIR, else `<work>/out` for a
    work dir the user chose and the default output dir beside the default work dir."""
    default = DEFAULT_OUTPUT_DIR if work == DEFAULT_WORK_DIR else work / "out"
    found = _chosen(option, OUTPUT_DIR_ENV, default)
    assert found is not None
    return found


def demo_dir(cache: Path | None = None) -> Path:
    """The embedded demo OS and its repos: $EIB_DEMO_DIR, else `demo` in the cache dir.

    The demo is the same on every build of a host (fixed key and timestamp), so
    builds with caches of their own (farm workers, tests) may share one."""
    if os.environ.get(DEMO_DIR_ENV):
        return Path(os.environ[DEMO_DIR_ENV]).absolute()
    return (cache or cache_dir()) / "demo"


def boot_log_dir() -> Path:
    """Serial logs of `eib boot`: beside the builds, never in an output dir that is published."""
    return DEFAULT_STATE_DIR / "boot"
