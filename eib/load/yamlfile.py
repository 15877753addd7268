"""YAML files read into plain data plus the line of every key.

Origins are kept beside the data (a map from key path to file:line) rather
than inside it, so the merged tree stays plain dicts and lists that pydantic
validates directly, and every later error can still name its line.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eib.errors import Origin, UserError
from eib.limits import (
    MAX_RECIPE_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    check_length,
    read_input,
)

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """One parsed file: its data and where each key of it stands."""

    path: Path
    data: dict[str, Any]
    origins: dict[KeyPath, Origin] = field(default_factory=dict)

    def origin(self, path: KeyPath) -> Origin:
        """The origin of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return Origin(str(self.path), 1)


class NotARecipe(UserError):
    """The file as a whole cannot be a recipe: not a regular file, unreadable, too large,
    not UTF-8, empty, or not a mapping of sections.

    Raised apart from other errors so that, for a file named in `extends`, the
    loader can report it at the `extends` entry that named the file.
    """


def load_yaml(path: Path) -> YamlDoc:
    """Read `path`; cached by (path, mtime, size) so a matrix parses each file once.

    Only a regular file of at most MAX_RECIPE_BYTES is read (`read_input`).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError("file not found", origin=Origin(str(path))) from None
    except OSError as err:
        raise NotARecipe(f"cannot read: {err.strerror}", origin=Origin(str(path))) from None
    return _load_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, _mtime: int, _size: int) -> YamlDoc:
    data = read_input(Path(path), limit=MAX_RECIPE_BYTES, error=NotARecipe)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise NotARecipe(
            f"not UTF-8 text (byte 0x{data[err.start]:02x})", origin=Origin(path, line)
        ) from None
    return parse_yaml(text, Path(path))


def parse_yaml(text: str, path: Path) -> YamlDoc:
    """`text` as a recipe file's data; an empty document or a non-mapping is NotARecipe."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise NotARecipe("recipe is empty", origin=Origin(str(path)))
        if not isinstance(node, yaml.MappingNode):
            raise NotARecipe(
                "a recipe must be a mapping of sections",
                origin=Origin(str(path), node.start_mark.line + 1),
            )
        doc = YamlDoc(path, {})
        data = _Converter(loader, doc).convert(node, ())
        assert isinstance(data, dict)
        doc.data = data
        return doc
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        problem = err.problem or "malformed YAML"
        raise UserError(f"malformed YAML: {problem}", origin=Origin(str(path), line)) from None
    except yaml.YAMLError as err:
        raise UserError(f"malformed YAML: {err}", origin=Origin(str(path))) from None
    finally:
        loader.dispose()


def parse_value(text: str, label: str, prefix: KeyPath = (), *, strict: bool = False) -> Any:
    """One YAML value without line records (`--set key=value`, a lock file), with the same
    bounds on expansion and length as a recipe file.

    Text that is not YAML is taken as the string it is, as a shell user means
    it; `strict` raises the YAMLError instead.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        converter = _Converter(loader, YamlDoc(Path(label), {}), Origin(label))
        return converter.convert(node, prefix)
    except yaml.YAMLError:
        if strict:
            raise
        return text
    finally:
        loader.dispose()


class _Converter:
    """Nodes to plain data, recording each key's line, with bounded expansion.

    Every value built counts, including each reuse of an aliased node, so an
    alias bomb or a self-referring alias stops at MAX_YAML_NODES or
    MAX_YAML_DEPTH with the line where it was reached.
    """

    def __init__(self, loader: yaml.SafeLoader, doc: YamlDoc, origin: Origin | None = None) -> None:
        self.loader = loader
        self.doc = doc
        self.origin = origin  # all of a value given on the command line has one origin
        self.count = 0
        self.depth = 0

    def _where(self, node: yaml.Node) -> Origin:
        return self.origin or Origin(str(self.doc.path), node.start_mark.line + 1)

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.depth += 1
        try:
            return self._convert(node, path)
        finally:
            self.depth -= 1

    def _convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_YAML_NODES:
            raise UserError(
                f"the document expands to more than {MAX_YAML_NODES} values "
                "(aliases repeated too often?)",
                origin=self._where(node),
                key=dotted(path[:3]) or None,
            )
        if self.depth > MAX_YAML_DEPTH:
            raise UserError(
                f"nested more than {MAX_YAML_DEPTH} levels deep (an alias that refers to itself?)",
                origin=self._where(node),
                key=dotted(path[:3]) or None,
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.doc.origins[(*path, index)] = self._where(item)
                items.append(self.convert(item, (*path, index)))
            return items
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str):
            check_length(value, origin=self._where(node), key=dotted(path) or None)
        return value

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            origin = self._where(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise UserError(
                    "YAML merge keys ('<<') are not supported; use extends: or overlays:",
                    origin=origin,
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise UserError(
                    "a key must be a plain value, not a mapping or a list",
                    origin=origin,
                    key=dotted(path) or None,
                )
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            check_length(key, origin=origin, key=dotted(path) or None)
            if key in result:
                raise UserError("duplicate key", origin=origin, key=_dotted((*path, key)))
            self.doc.origins[(*path, key)] = origin
            result[key] = self.convert(value_node, (*path, key))
        return result


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def dotted(path: KeyPath) -> str:
    """`('image', 'hooks', 2)` → `image.hooks[2]`, the form errors show."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out
