"""`eib demo-os`: build (or reuse) the demo OS and optionally serve it.

The demo repos are what `recipes/demo.yaml` builds from; this command makes
them visible: where they are, the ref and commit, the signing key, and (with
`--serve`) the URLs to put in a recipe.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from eib import paths as eib_paths
from eib.demo.cache import DemoPaths, ensure_demo_dir
from eib.demo.debian.cache import DebianPaths
from eib.demo.serve import serve
from eib.errors import UserError


def _summary(paths: DemoPaths | DebianPaths) -> list[tuple[str, str]]:
    extra = []
    if isinstance(paths, DebianPaths):
        extra = [("packages", str(paths.packages)),
                 ("built in", f"{paths.build_seconds:.0f} s (when it was built)")]
    return [*extra,
        ("serve root", str(paths.root)),
        ("ostree repo", str(paths.ostree_repo)),
        ("ref", paths.ostree_ref),
        ("commit", paths.commit),
        ("kernel", paths.kernel_version),
        ("flatpak repo", str(paths.flatpak_repo) if paths.has_flatpak else "(none)"),
        ("public key", str(paths.gpg_key)),
        ("key fingerprint", paths.key_id),
    ]


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM: for a server, a signal is the normal way to stop."""
    from eib.interrupt import Interrupted

    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while not stop.wait(0.5):
            pass
    except (KeyboardInterrupt, Interrupted):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo_os(
    directory: Path | None, *, serve_it: bool, port: int, os_name: str = "busybox"
) -> None:
    """Build the demo into `directory`, print what was made, maybe serve it."""
    from eib.demo.select import DEMO_OSES

    if os_name not in DEMO_OSES:
        raise UserError(f"unknown demo OS '{os_name}' (choose {' or '.join(DEMO_OSES)})",
                        key="--os")
    out = Console(highlight=False, soft_wrap=True)
    status = Console(stderr=True, highlight=False)
    demo_dir = (directory or eib_paths.demo_dir()).absolute()
    try:
        demo_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot use {demo_dir}: {err.strerror}", key="--dir") from err
    paths: DemoPaths | DebianPaths
    with status.status(f"building the {os_name} demo OS in {demo_dir}…"):
        if os_name == "debian":
            from eib.demo.debian import ensure_debian_dir

            paths = ensure_debian_dir(demo_dir)
        else:
            paths = ensure_demo_dir(demo_dir)
    for name, value in _summary(paths):
        out.print(f"[bold]{name + ':':<16}[/bold] {escape(value)}")
    if not serve_it:
        return
    with serve(paths.root, port) as url:
        out.print(f"serving {paths.root} at {url}/")
        out.print(f"  ostree url  {url}/ostree")
        if paths.has_flatpak:
            out.print(f"  flatpak url {url}/flatpak")
        out.print(f"  key url     {url}/keys/{paths.gpg_key.name}")
        out.print("press Ctrl-C to stop")
        sys.stdout.flush()
        _wait_for_stop()
    out.print("stopped")
