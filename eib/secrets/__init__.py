"""Secret values, fetched only while a build runs.

A plan holds `SecretRef`s (where a value lives: an environment variable, a
file, a key in a YAML or legacy private INI file) and `<secret:NAME>` tokens
where a value, or one built from it, is used; never a value.  The executor
asks here for the values (`SecretValues`), reveals tokens at the point of
use, and scrubs every form of every value from what it shows or writes
(`redactor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from eib.errors import UserError
from eib.model.plan import Plan, SecretRef
from eib.secrets.provider import resolve
from eib.secrets.redact import Redactor
from eib.secrets.tokens import reveal, token

__all__ = [
    "Redactor",
    "SecretValues",
    "redactor",
    "resolve_secrets",
    "reveal",
    "reveal_plan",
    "runtime_env",
    "supplied_ref",
    "token",
]


def supplied_ref(name: str, text: str) -> SecretRef:
    """`@FILE` or `env:VAR` given at run time (`eib run --secret NAME=...`)."""
    if text.startswith("@") and len(text) > 1:
        return SecretRef(name=name, source="file-content", where=str(Path(text[1:]).resolve()))
    if text.startswith("env:") and len(text) > 4:
        return SecretRef(name=name, source="env", where=text[4:])
    raise UserError(
        f"--secret {name}: expected NAME=@FILE or NAME=env:VARIABLE (never the value itself)",
        key="--secret",
    )


class SecretValues:
    """The values of one plan's secrets, each fetched once, on first use."""

    def __init__(self, plan: Plan, supplied: Mapping[str, SecretRef] | None = None) -> None:
        self.refs = {ref.name: ref for ref in plan.secrets}
        for name in supplied or {}:
            if name not in self.refs:
                raise UserError(f"--secret {name}: the plan has no such secret", key="--secret")
        self.refs.update(supplied or {})
        self._values: dict[str, str] = {}
        self._busy: set[str] = set()

    def __getitem__(self, name: str) -> str:
        if name not in self._values:
            if name not in self.refs:
                raise UserError(f"the plan uses secret '{name}' but does not define it")
            if name in self._busy:
                raise UserError(f"secret '{name}' refers to itself", key=f"secrets.{name}")
            self._busy.add(name)
            try:
                self._values[name] = resolve(self.refs[name], self.__getitem__)
            finally:
                self._busy.discard(name)
        return self._values[name]

    def all(self) -> dict[str, str]:
        return {name: self[name] for name in sorted(self.refs)}

    def reveal(self, text: str) -> str:
        return reveal(text, self.__getitem__)

    def texts(self) -> list[str]:
        """Every secret text worth scrubbing: values, and the content of secret files."""
        texts = []
        for name, ref in self.refs.items():
            value = self[name]
            if ref.source == "file":
                try:
                    value = Path(value).read_text(errors="replace")
                except OSError:
                    continue
            texts.append(value)
        return texts


def reveal_plan(plan: Plan, values: SecretValues) -> Plan:
    """An in-memory copy of `plan` with every token revealed, for the steps that
    hand values to tools; never written or shown."""

    def walk(node: object) -> object:
        if isinstance(node, str):
            return values.reveal(node)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    data = walk(plan.model_dump(mode="json", exclude={"secrets"}))
    assert isinstance(data, dict)
    return Plan.model_validate({**data, "secrets": plan.secrets})


def resolve_secrets(plan: Plan, values: SecretValues | None = None) -> dict[str, str]:
    """name → value; for `file` secrets the value is the file's path."""
    return (values or SecretValues(plan)).all()


def runtime_env(plan: Plan, values: SecretValues | None = None) -> dict[str, str]:
    """The hook environment with every token of the plan's env revealed."""
    values = values or SecretValues(plan)
    return {name: values.reveal(value) for name, value in plan.env.items()}


def redactor(plan: Plan, values: SecretValues | None = None) -> Redactor:
    """Scrubs every secret of `plan`; a secret that cannot be fetched fails the build first."""
    return Redactor((values or SecretValues(plan)).texts())
