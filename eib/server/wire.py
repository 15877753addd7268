"""Messages between client and server: a 4-byte length, then a marshalled dict.

File descriptors (the caller's stdin, stdout, stderr and working directory)
travel as SCM_RIGHTS ancillary data with the first message, so the child
writes straight to the caller's terminal or pipe: isatty(), terminal width
and ordering of stdout against stderr are exactly as if it ran in-process.

Every `eib` invocation runs this, so it sticks to built-in C modules: the
`socket` and `json` wrappers (and the `enum`, `re` and `selectors` they pull
in) would cost more than the rest of the client.  marshal is safe here:
both ends run the same interpreter (it is part of the server's fingerprint)
and the server checks that the caller is its own user before decoding.
"""

from __future__ import annotations

import _socket
import marshal
import os
import struct

HEADER = struct.Struct(">I")
MAX_MESSAGE = 16 * 1024 * 1024
MAX_FDS = 8
FD = struct.Struct("i")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Message = dict[str, Any]


class WireError(Exception):
    """The other side closed the connection or sent something malformed."""


def send(sock: _socket.socket, message: Message, fds: list[int] | None = None) -> None:
    payload = marshal.dumps(message)
    data = HEADER.pack(len(payload)) + payload
    if fds:
        rights = struct.pack(f"{len(fds)}i", *fds)
        sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        data = data[sent:]
    if data:
        sock.sendall(data)


def receive(sock: _socket.socket, max_fds: int = 0) -> tuple[Message, list[int]]:
    """One message and the descriptors that came with it (the caller closes them).

    Reads exactly one message's bytes, so messages sent back to back (the
    child's pid, then its exit status) are never merged.
    """
    fds: list[int] = []
    head, ancillary, _flags, _addr = sock.recvmsg(
        HEADER.size, _socket.CMSG_SPACE(max_fds * FD.size) if max_fds else 0
    )
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % FD.size
            fds += struct.unpack(f"{usable // FD.size}i", data[:usable])
    try:
        if not head:
            raise WireError("connection closed")
        head += _exactly(sock, HEADER.size - len(head))
        (length,) = HEADER.unpack(head)
        if length > MAX_MESSAGE:
            raise WireError(f"message of {length} bytes is too large")
        message = marshal.loads(_exactly(sock, length))
        if not isinstance(message, dict):
            raise WireError("message is not a dict")
    except (WireError, ValueError, EOFError, TypeError, OSError) as err:
        for fd in fds:
            os.close(fd)
        raise WireError(str(err)) from None
    return message, fds


def _exactly(sock: _socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise WireError("connection closed mid-message")
        data += chunk
    return data
