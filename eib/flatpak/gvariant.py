"""A small reader of serialised GVariant data (little-endian), for OSTree summaries.

The summary of a Flatpak repo carries every ref's commit, installed and
download size and metadata; reading it directly gives exact byte counts and
needs neither PyGObject nor an installation. Only reading is needed.
"""

from __future__ import annotations

import struct
from typing import Any

_FIXED = {"b": 1, "y": 1, "n": 2, "q": 2, "i": 4, "u": 4, "h": 4, "x": 8, "t": 8, "d": 8}
_STRUCT = {"b": "<?", "y": "<B", "n": "<h", "q": "<H", "i": "<i", "u": "<I", "h": "<i",
           "x": "<q", "t": "<Q", "d": "<d"}


class GVariantError(ValueError):
    """Data that is not the serialised form of the expected type."""


def split_type(sig: str) -> tuple[str, str]:
    """The first complete type in `sig`, and the rest."""
    if not sig:
        raise GVariantError("empty type string")
    c = sig[0]
    if c in _FIXED or c in "sogv":
        return c, sig[1:]
    if c in "am":
        inner, rest = split_type(sig[1:])
        return c + inner, rest
    if c in "({":
        close = ")" if c == "(" else "}"
        rest = sig[1:]
        parts = []
        while rest and rest[0] != close:
            part, rest = split_type(rest)
            parts.append(part)
        if not rest:
            raise GVariantError(f"unterminated type {sig!r}")
        return c + "".join(parts) + close, rest[1:]
    raise GVariantError(f"unknown type character {c!r}")


def members(sig: str) -> list[str]:
    """The member types of a tuple or dict-entry type."""
    inner = sig[1:-1]
    out = []
    while inner:
        part, inner = split_type(inner)
        out.append(part)
    return out


def alignment(sig: str) -> int:
    c = sig[0]
    if c in _FIXED:
        return _FIXED[c]
    if c in "sog":
        return 1
    if c == "v":
        return 8
    if c in "am":
        return alignment(sig[1:])
    return max((alignment(m) for m in members(sig)), default=1)


def fixed_size(sig: str) -> int | None:
    c = sig[0]
    if c in _FIXED:
        return _FIXED[c]
    if c in "({":
        parts = members(sig)
        if not parts:
            return 1
        offset = 0
        for m in parts:
            size = fixed_size(m)
            if size is None:
                return None
            offset = _align(offset, alignment(m)) + size
        return _align(offset, alignment(sig))
    return None


def _align(offset: int, to: int) -> int:
    return (offset + to - 1) // to * to


def _offset_size(container: int) -> int:
    if container == 0:
        return 0
    if container <= 0xFF:
        return 1
    if container <= 0xFFFF:
        return 2
    if container <= 0xFFFFFFFF:
        return 4
    return 8


def _read_offset(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "little")


def decode(data: bytes, sig: str) -> Any:
    """The Python value of `data` read as type `sig` (tuples → tuples, a{..} → dict)."""
    c = sig[0]
    if c in _STRUCT:
        if len(data) != _FIXED[c]:
            raise GVariantError(f"{len(data)} bytes for type {c}")
        return struct.unpack(_STRUCT[c], data)[0]
    if c in "sog":
        if not data or data[-1] != 0:
            raise GVariantError("string without terminating nul")
        return data[:-1].decode("utf-8")
    if c == "v":
        nul = data.rfind(b"\0")
        if nul < 0:
            raise GVariantError("variant without type")
        inner = data[nul + 1 :].decode("ascii")
        return decode(data[:nul], inner)
    if c == "m":
        if not data:
            return None
        inner = sig[1:]
        return decode(data if fixed_size(inner) is not None else data[:-1], inner)
    if c == "a":
        items = _decode_array(data, sig[1:])
        if sig[1] == "{":
            return dict(items)
        if sig[1] == "y":
            return bytes(items)
        return items
    if c in "({":
        return tuple(_decode_tuple(data, members(sig)))
    raise GVariantError(f"unsupported type {sig!r}")


def _decode_array(data: bytes, elem: str) -> list[Any]:
    if elem == "y":
        return list(data)
    size = fixed_size(elem)
    if size is not None:
        if len(data) % size:
            raise GVariantError("array length is not a multiple of its element size")
        return [decode(data[i : i + size], elem) for i in range(0, len(data), size)]
    n = len(data)
    if n == 0:
        return []
    osz = _offset_size(n)
    table = _read_offset(data, n - osz, osz)
    if table > n or (n - table) % osz:
        raise GVariantError("bad array framing")
    count = (n - table) // osz
    out = []
    start = 0
    align_to = alignment(elem)
    for i in range(count):
        end = _read_offset(data, table + i * osz, osz)
        start = _align(start, align_to)
        out.append(decode(data[start:end], elem))
        start = end
    return out


def _decode_tuple(data: bytes, parts: list[str]) -> list[Any]:
    n = len(data)
    osz = _offset_size(n)
    offset = 0
    used = 0
    out = []
    for i, part in enumerate(parts):
        offset = _align(offset, alignment(part))
        size = fixed_size(part)
        if size is not None:
            end = offset + size
        elif i == len(parts) - 1:
            end = n - osz * used
        else:
            used += 1
            end = _read_offset(data, n - osz * used, osz)
        out.append(decode(data[offset:end], part))
        offset = end
    return out


def be64(value: int) -> int:
    """A uint64 stored big-endian (OSTree and Flatpak sizes and times), read little-endian."""
    return int.from_bytes(value.to_bytes(8, "little"), "big")
