"""The `EIB_*` environment of a merged legacy INI config (names: `eib.envnames`)."""

from __future__ import annotations

from eib.compat.reader import LegacyConfig
from eib.envnames import env_name, env_value


def legacy_env(config: LegacyConfig) -> dict[str, str]:
    """Every option of the merged config (private ones too), expanded."""
    env: dict[str, str] = {}
    for section, options in config.resolved().items():
        for option, value in options.items():
            env[env_name(section, option)] = env_value(value)
    return env
