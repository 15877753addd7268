"""Where eib's own files live: built-in hooks, the shell library, the legacy tree.

eib is installed from its checkout (`pip install -e .`), so these are found
beside the package rather than inside it.
"""

from __future__ import annotations

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

# Build dirs. eib runs as root: its work and output dirs live under a
# root-owned tree created 0700, not in world-writable /var/tmp where another
# local user could create them first (see eib.execute.safedirs).
DEFAULT_STATE_DIR = "/var/lib/eib"
DEFAULT_WORK_DIR = f"{DEFAULT_STATE_DIR}/work"
DEFAULT_OUTPUT_DIR = f"{DEFAULT_STATE_DIR}/out"
DEFAULT_CACHE_DIR = "/var/cache/eib"
