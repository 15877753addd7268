"""Build-time modification times clamped to the source date epoch.

Files written during the build (deployment, /etc merge, hooks, Flatpaks)
carry the build's clock; SOURCE_DATE_EPOCH's rule sets every later time to
the epoch so two builds of the same inputs write the same file systems.
"""

from __future__ import annotations

import os
from pathlib import Path

from eib.tools.run import run


def clamp_mtimes(sysroot: Path, epoch: int) -> int:
    """Set every modification time later than `epoch` to `epoch` (SOURCE_DATE_EPOCH's rule).

    Files written during the build (deployment, /etc merge, hooks, Flatpaks)
    carry the build's clock; older times (ostree's canonical 0) are content
    and stay. Deployment roots are immutable, so their bit is lifted meanwhile.
    """
    roots = sorted(p for p in sysroot.glob("ostree/deploy/*/deploy/*.*") if p.is_dir())
    for root in roots:
        run(["chattr", "-i", str(root)])
    changed = 0
    try:
        for dirpath, dirnames, filenames in os.walk(sysroot):
            for name in [*dirnames, *filenames]:
                path = os.path.join(dirpath, name)
                if os.lstat(path).st_mtime > epoch:
                    os.utime(path, (epoch, epoch), follow_symlinks=False)
                    changed += 1
        if os.lstat(sysroot).st_mtime > epoch:
            os.utime(sysroot, (epoch, epoch))
    finally:
        for root in roots:
            run(["chattr", "+i", str(root)])
    return changed
