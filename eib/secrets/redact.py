"""Scrub secret values from text and data about to be shown or written.

A secret can reach a log in another shape than the one it was given in:
one line at a time (hook output is logged line by line, PEM keys span
many), JSON-escaped, shell-quoted or URL-encoded (a password in a URL).
Every such form of every value is replaced, longest first.
"""

from __future__ import annotations

import json
import shlex
import urllib.parse
from collections.abc import Iterable
from typing import Any

from eib.model.plan import REDACTED

MIN_FORM = 4


def forms(value: str) -> set[str]:
    """The shapes `value` may take in output."""
    out = {value}
    lines = [line.strip() for line in value.splitlines()]
    out.update(line for line in lines if len(line) >= MIN_FORM)
    for line in lines:  # `key = value` lines of a credentials file: the value part
        for sep in ("=", ":"):
            _, found, right = line.partition(sep)
            if found and len(right.strip()) >= MIN_FORM + 2:
                out.add(right.strip())
    for text in list(out):
        out.add(json.dumps(text, ensure_ascii=False)[1:-1])
        out.add(json.dumps(text)[1:-1])
        out.add(shlex.quote(text))
        out.add(urllib.parse.quote(text, safe=""))
        out.add(urllib.parse.quote_plus(text, safe=""))
    return {f for f in out if len(f) >= MIN_FORM}


class Redactor:
    """Replaces every form of the given secret values by `<redacted>`."""

    def __init__(self, values: Iterable[str]) -> None:
        found: set[str] = set()
        for value in values:
            found |= forms(value)
        self.forms = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def data(self, value: Any) -> Any:
        """A JSON-like value with its strings and its mapping keys scrubbed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value
