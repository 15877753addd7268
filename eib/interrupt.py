"""SIGTERM and SIGINT stop eib at once: they raise `Interrupted`, never an error.

`Interrupted` derives from `BaseException`, not `Exception` nor `EibError`,
so no retry loop or `except BuildError` treats a signal as a failure worth
another try; the `finally` and context-manager cleanups still run on the way
out.  It is not a `KeyboardInterrupt` either: the command-line framework
turns those into a bare exit status before eib could say what was stopped.
The exit status is the shell's: 128 + the signal number (143, 130).

Only the first signal raises.  Later ones are ignored so that the cleanup
the first one started (unmounting, killing children, aborting uploads) is
not itself cut short; SIGKILL remains for a cleanup that hangs.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """A signal asked eib to stop; `where` names the stage/step it stopped in."""

    def __init__(self, signum: int, where: str = "") -> None:
        self.signum = signum
        self.where = where
        super().__init__(self.render())

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def render(self) -> str:
        where = f" during {self.where}" if self.where else ""
        return f"interrupted{where} ({self.signal_name})"

    def located(self, where: str) -> Interrupted:
        """Name the place it stopped, unless a deeper layer already did."""
        if not self.where and where:
            self.where = where
            self.args = (self.render(),)
        return self

    def line(self) -> str:
        """The one line the command line prints: `eib: interrupted during ostree/pull`."""
        return "eib: interrupted" + (f" during {self.where}" if self.where else "")


_raised = False
_at_signal: list[Callable[[], None]] = []


def at_signal(callback: Callable[[], None]) -> None:
    """Call `callback` as soon as the first signal arrives, before `Interrupted` is raised.

    For what must not wait for the main thread's cleanup: ending the tools
    other threads wait on (`eib.tools.run`), which may be what the main
    thread itself waits for.  It runs in the signal handler: it must be quick
    and take no lock the main thread may hold.
    """
    if callback not in _at_signal:
        _at_signal.append(callback)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _raised
    if _raised:
        return
    _raised = True
    for callback in _at_signal:
        with contextlib.suppress(Exception):
            callback()
    raise Interrupted(signum)


def install() -> None:
    """Make SIGTERM and SIGINT raise `Interrupted` in the main thread from now on."""
    global _raised
    _raised = False
    for sig in SIGNALS:
        signal.signal(sig, _handler)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """`install()` for a block, restoring the previous handlers after it."""
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
    already = all(previous[sig] is _handler for sig in SIGNALS)
    if not already:
        install()
    try:
        yield
    finally:
        if not already:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def where(stage: str | None, step: str | None) -> str:
    """`stage/step` as error messages write it."""
    return "/".join(p for p in (stage, step) if p)
