"""The pure parts: arch mapping, ref patterns, repo files, the GVariant reader."""

from __future__ import annotations

import struct

import pytest

from eib.compile.carried import parse_repo_file
from eib.errors import UserError
from eib.flatpak.gvariant import decode
from eib.flatpak.metadata import RefInfo
from eib.flatpak.resolve import matches, parse_request
from eib.tools.flatpak import flatpak_arch


@pytest.mark.parametrize(("arch", "expected"),
                         [("amd64", "x86_64"), ("arm64", "aarch64"), ("i386", "i386")])
def test_arch_mapping(arch: str, expected: str) -> None:
    assert flatpak_arch(arch) == expected
    assert flatpak_arch(arch, "riscv64") == "riscv64"


def test_unknown_arch_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"flatpak\.arch"):
        flatpak_arch("mips")


def _ref(ref: str) -> RefInfo:
    return RefInfo("r", ref, "0" * 64, 0, 0)


def test_patterns() -> None:
    app = _ref("app/org.eib.Hello/x86_64/stable")
    assert matches("org.eib.Hello", app)
    assert matches("org.eib.Hello//stable", app)
    assert not matches("org.eib.Hello//beta", app)
    assert matches("app/org.eib.Hello", app)
    assert not matches("runtime/org.eib.Hello", app)
    assert matches("org.eib.*", app)
    assert not matches("org.eib.Hello/aarch64/stable", app)
    assert parse_request("org.eib.Hello//beta", "app", "x86_64") == ("org.eib.Hello", "x86_64",
                                                                     "beta")
    assert parse_request("app/org.eib.Hello/aarch64/stable", "app", "x86_64") == (
        "org.eib.Hello", "aarch64", "stable")
    assert parse_request("org.eib.Hello", "app", "x86_64") == ("org.eib.Hello", "x86_64", "")


def test_repo_file() -> None:
    keys = parse_repo_file("[Flatpak Repo]\nUrl=https://x/repo/\nTitle=X\nGPGKey=AAAA\n", "f")
    assert keys == {"Url": "https://x/repo/", "Title": "X", "GPGKey": "AAAA"}
    with pytest.raises(UserError, match=r"no \[Flatpak Repo\] group"):
        parse_repo_file("[Other]\nUrl=x\n", "f")


def test_gvariant_containers() -> None:
    # (s(tay)as): framing offsets for the variable-size members, little-endian.
    name = b"ab\0"
    inner = struct.pack("<Q", 7) + b"\x01\x02"
    strings = b"x\0yz\0" + bytes([2, 5])
    # inner starts at 8 (aligned), strings follow; offsets of members 0 and 1 at the end,
    # in reverse order.
    body = name + b"\0" * 5 + inner + strings
    data = body + bytes([8 + len(inner), 3])
    assert decode(data, "(s(tay)as)") == ("ab", (7, b"\x01\x02"), ["x", "yz"])
    assert decode(b"hi\0\0s", "v") == "hi"
    assert decode(b"", "as") == []
    assert decode(struct.pack("<II", 1, 2), "au") == [1, 2]
