"""Errors that reach the user.

A `UserError` is a mistake in the input (recipe, variant, command line): the
CLI prints its message alone and exits 2.  A `BuildError` is a failure while
building: the executor runs the error stage and exits 1.  Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Origin:
    """Where a value was written: a file and a 1-based line (0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @classmethod
    def of(cls, path: Path | str, line: int = 0) -> Origin:
        return cls(str(path), line)


class EibError(Exception):
    """Base of every error eib reports without a traceback."""

    exit_code = 1


class UserError(EibError):
    """Bad input: one message naming file, line and key; exit status 2."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        origin: Origin | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.origin = origin
        self.key = key
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        key = f"{self.key}: " if self.key else ""
        text = f"{where}{key}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class BuildError(EibError):
    """A build step failed; the error stage runs and the exit status is 1."""

    exit_code = 1

    def __init__(self, message: str, *, stage: str | None = None, step: str | None = None) -> None:
        self.message = message
        self.stage = stage
        self.step = step
        super().__init__(self.render())

    def render(self) -> str:
        where = "/".join(p for p in (self.stage, self.step) if p)
        return f"{where}: {self.message}" if where else self.message


def did_you_mean(word: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """A hint naming the closest known word, for typos in keys and values."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
