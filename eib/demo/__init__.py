"""The demo OS: a small, real, bootable OSTree OS (and a Flatpak repo) that
eib makes itself from the Debian archive, so the first build needs no other
server.

`ensure_demo(cache_dir)` builds it once into `<cache_dir>/demo/` and reuses it;
`serve(paths.root, port)` serves `ostree/`, `flatpak/` and `keys/` on
127.0.0.1.  The boot contract (kernel arguments, GRUB images, ready marker)
is described in `docs/demo.md` and in `eib.demo.initramfs`/`eib.demo.grub`.
"""

from __future__ import annotations

from eib.demo.cache import DemoPaths, ensure_demo
from eib.demo.repo import OSTREE_REF
from eib.demo.serve import Request, ServedURL, serve
from eib.demo.tree import HOSTNAME, OS_NAME, PRETTY_NAME, READY_MARKER

__all__ = [
    "HOSTNAME",
    "OSTREE_REF",
    "OS_NAME",
    "PRETTY_NAME",
    "READY_MARKER",
    "DemoPaths",
    "Request",
    "ServedURL",
    "ensure_demo",
    "serve",
]
