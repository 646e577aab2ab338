"""Classic BPF socket filters on a TCP socket's incoming segments, chosen by their flags.

A filter attached with SO_ATTACH_FILTER runs on every segment that reaches the socket, with
the data starting at the TCP header (``tcp_filter()`` in net/ipv4/tcp_ipv4.c); returning 0
drops the segment before TCP sees it, as if the network had lost it. A listener's filter also
runs on the segments for its half-finished connections (request sockets): a filter on the
listener dropped the final ACK (``lost_segments``). The lab's experiments lose segments so.
Where: SO_ATTACH_FILTER needs root, or a process that is root of its own user namespace:
elsewhere setsockopt raises PermissionError (EPERM).
Rules: a program is data (``FlagsRule``); the kernel copies it when it is attached, so
nothing has to be kept alive; ``detach`` never fails on a socket without a filter.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["ACK", "ECN_BITS", "FIN", "PSH", "RST", "SYN", "FlagsRule", "attach", "detach"]

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # asm-generic/socket.h
SO_DETACH_FILTER = getattr(socket, "SO_DETACH_FILTER", 27)

#: TCP header flag bits (byte 13 of the header), include/net/tcp.h.
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ECN_BITS = 0xC0  # ECE and CWR: a SYN may carry them; a rule on "the SYN" should ignore them

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
_LOAD_BYTE = 0x30  # BPF_LD | BPF_B | BPF_ABS
_AND = 0x54  # BPF_ALU | BPF_AND | BPF_K
_JUMP_IF_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
_FLAGS_OFFSET = 13
_DROP, _KEEP = 0, 0xFFFFFFFF


class FlagsRule(NamedTuple):
    """Drop the segments whose flags, masked with ``mask``, equal ``value`` (or, with
    ``drop_matching=False``, drop every other segment and keep those)."""

    mask: int
    value: int
    drop_matching: bool = True

    @classmethod
    def exactly(cls, flags: int) -> FlagsRule:
        """Segments with exactly these flags (ECN bits ignored), e.g. SYN alone or ACK alone."""
        return cls(0xFF & ~ECN_BITS, flags)

    def program(self) -> list[tuple[int, int, int, int]]:
        """The instructions (code, jump if true, jump if false, constant)."""
        on_match, otherwise = (_DROP, _KEEP) if self.drop_matching else (_KEEP, _DROP)
        return [
            (_LOAD_BYTE, 0, 0, _FLAGS_OFFSET),
            (_AND, 0, 0, self.mask),
            (_JUMP_IF_EQUAL, 0, 1, self.value),
            (_RETURN, 0, 0, on_match),
            (_RETURN, 0, 0, otherwise),
        ]


def attach(sock: socket.socket, rule: FlagsRule) -> None:
    """Attach (or replace) the socket's filter; PermissionError where filters are not allowed."""
    program = rule.program()
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in program))
    # struct sock_fprog: the kernel copies the instructions during this call.
    sock.setsockopt(
        socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(program), ctypes.addressof(code))
    )


def detach(sockets: Iterable[socket.socket]) -> None:
    """Remove the sockets' filters, if they have any."""
    for sock in sockets:
        # OSError: no filter attached (ENOENT), or the socket is closed already
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
