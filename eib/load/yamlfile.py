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


def load_yaml(path: Path) -> YamlDoc:
    """Read `path`; cached by (path, mtime, size) so a matrix parses each file once."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError("file not found", origin=Origin(str(path))) from None
    return _load_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, _mtime: int, _size: int) -> YamlDoc:
    text = Path(path).read_text(encoding="utf-8")
    return parse_yaml(text, Path(path))


def parse_yaml(text: str, path: Path) -> YamlDoc:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDoc(path, {})
        if node is None:
            return doc
        if not isinstance(node, yaml.MappingNode):
            raise UserError(
                "a recipe must be a mapping of sections",
                origin=Origin(str(path), node.start_mark.line + 1),
            )
        data = _convert(loader, node, (), doc)
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


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, doc: YamlDoc) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise UserError(
                    "YAML merge keys ('<<') are not supported; use extends: or overlays:",
                    origin=Origin(str(doc.path), key_node.start_mark.line + 1),
                )
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            line = key_node.start_mark.line + 1
            if key in result:
                raise UserError(
                    "duplicate key", origin=Origin(str(doc.path), line), key=_dotted((*path, key))
                )
            doc.origins[(*path, key)] = Origin(str(doc.path), line)
            result[key] = _convert(loader, value_node, (*path, key), doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.origins[(*path, index)] = Origin(str(doc.path), item.start_mark.line + 1)
            items.append(_convert(loader, item, (*path, index), doc))
        return items
    return loader.construct_object(node, deep=True)


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
