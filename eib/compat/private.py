"""Private INI values, read again only when a build runs.

A plan compiled from a legacy tree shows `<redacted>` for every option that
comes from (or is fed by) a private file. The executor asks here for the
real values: the tree is read again for the plan's variant, so the values
never enter the plan, its JSON or its digest.
"""

from __future__ import annotations

from pathlib import Path

from eib.compat.env import legacy_env
from eib.compat.reader import read_tree
from eib.envnames import env_name
from eib.model.plan import CACHEDIR_TOKEN, Plan


def private_env(plan: Plan) -> dict[str, str]:
    """`EIB_*` name → value for the private options of the plan's legacy tree."""
    build = plan.build
    config = read_tree(
        Path(plan.recipe),
        {
            "product": build.product,
            "branch": build.branch,
            "arch": build.arch,
            "platform": build.platform,
            "personality": build.personality,
        },
        localdir=Path(build.localdir) if build.localdir else None,
        sysconfdir=Path(build.sysconfdir),
        srcdir=Path(build.srcdir) if build.srcdir else None,
        cachedir=CACHEDIR_TOKEN,
        build_version=build.build_version,
    )
    names = {env_name(s, k) for s, k in config.hidden_keys()}
    return {name: value for name, value in legacy_env(config).items() if name in names}
