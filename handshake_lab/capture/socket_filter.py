"""Classic BPF socket filters: on a TCP socket's incoming segments, chosen by their flags, and
on the sniffer's packet socket, keeping one port's frames.

A filter attached with SO_ATTACH_FILTER runs on every segment that reaches the socket, with
the data starting at the TCP header (``tcp_filter()`` in net/ipv4/tcp_ipv4.c); returning 0
drops the segment before TCP sees it, as if the network had lost it. A listener's filter also
runs on the segments for its half-finished connections (request sockets): a filter on the
listener dropped the final ACK (``lost_segments``). The lab's experiments lose segments so.
Where: SO_ATTACH_FILTER needs root, or a process that is root of its own user namespace:
elsewhere setsockopt raises PermissionError (EPERM).
The packet socket's filter (``PortRule``) runs before a frame is queued to it, so the frames
of other programs on loopback (a notebook's own kernel traffic, a bulk transfer) neither fill
its queue nor cost the reading thread any time: without it, a busy loopback made the queue
overflow and the lab's own segments were dropped with the rest (PACKET_STATISTICS counted
them).
Rules: a program is data (``FlagsRule``, ``PortRule``); the kernel copies it when it is
attached, so nothing has to be kept alive; ``detach`` never fails on a socket without a filter.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

from .. import platforms

__all__ = [
    "ACK",
    "ECN_BITS",
    "FIN",
    "PSH",
    "RST",
    "SYN",
    "FlagsRule",
    "PortRule",
    "attach",
    "detach",
]

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
_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_LOAD_HALF = 0x28  # BPF_LD | BPF_H | BPF_ABS
_LOAD_HALF_AT_X = 0x48  # BPF_LD | BPF_H | BPF_IND
_LOAD_IP_HEADER_LENGTH = 0xB1  # BPF_LDX | BPF_B | BPF_MSH: X = 4 * (byte & 0xf)
_JUMP_IF_ANY_BIT = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_FLAGS_OFFSET = 13
_DROP, _KEEP = 0, 0xFFFFFFFF
_PACKET_TYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE (linux/filter.h)
_PACKET_OUTGOING = 4  # linux/if_packet.h
_ETHERNET = 14  # loopback frames carry an Ethernet header (of zeros)
_IPV4, _IPV6, _TCP = 0x0800, 0x86DD, 6


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


class PortRule(NamedTuple):
    """On a packet socket bound to an Ethernet-framed interface (loopback is one): keep the
    arriving TCP frames to or from ``port``, over IPv4 or IPv6 (without extension headers,
    which the lab's segments never carry), and drop every other frame, and the outgoing copy
    of each (loopback shows every frame twice). The same test ``tcpdump 'tcp port N'`` compiles
    to, with the outgoing copies dropped too."""

    port: int

    def program(self) -> list[tuple[int, int, int, int]]:
        port = self.port
        labelled = [
            ("", _LOAD_WORD, "", "", _PACKET_TYPE),
            ("", _JUMP_IF_EQUAL, "drop", "", _PACKET_OUTGOING),
            ("", _LOAD_HALF, "", "", 12),  # the EtherType
            ("", _JUMP_IF_EQUAL, "", "ipv4", _IPV6),
            ("", _LOAD_BYTE, "", "", _ETHERNET + 6),  # IPv6's next header
            ("", _JUMP_IF_EQUAL, "", "drop", _TCP),
            ("", _LOAD_HALF, "", "", _ETHERNET + 40),  # source port
            ("", _JUMP_IF_EQUAL, "keep", "", port),
            ("", _LOAD_HALF, "", "", _ETHERNET + 42),  # destination port
            ("", _JUMP_IF_EQUAL, "keep", "drop", port),
            ("ipv4", _JUMP_IF_EQUAL, "", "drop", _IPV4),
            ("", _LOAD_BYTE, "", "", _ETHERNET + 9),  # IPv4's protocol
            ("", _JUMP_IF_EQUAL, "", "drop", _TCP),
            ("", _LOAD_HALF, "", "", _ETHERNET + 6),  # flags and fragment offset
            ("", _JUMP_IF_ANY_BIT, "drop", "", 0x1FFF),  # a later fragment: no TCP header
            ("", _LOAD_IP_HEADER_LENGTH, "", "", _ETHERNET),
            ("", _LOAD_HALF_AT_X, "", "", _ETHERNET),  # source port
            ("", _JUMP_IF_EQUAL, "keep", "", port),
            ("", _LOAD_HALF_AT_X, "", "", _ETHERNET + 2),  # destination port
            ("", _JUMP_IF_EQUAL, "keep", "drop", port),
            ("keep", _RETURN, "", "", _KEEP),
            ("drop", _RETURN, "", "", _DROP),
        ]
        where = {label: index for index, (label, *_) in enumerate(labelled) if label}

        def jump(index: int, target: str) -> int:
            return where[target] - index - 1 if target else 0

        return [
            (code, jump(index, if_true), jump(index, if_false), constant)
            for index, (_, code, if_true, if_false, constant) in enumerate(labelled)
        ]


def unavailable_here() -> str:
    """Why this platform has no socket filters, or "" on Linux."""
    if platforms.is_linux():
        return ""
    return "socket filters (SO_ATTACH_FILTER) are Linux's"


def attach(sock: socket.socket, rule: FlagsRule | PortRule) -> None:
    """Attach (or replace) the socket's filter; PermissionError where filters are not allowed,
    OSError off Linux (``unavailable_here`` says why)."""
    why = unavailable_here()
    if why:
        raise OSError(errno.ENOPROTOOPT, f"{why}; {platforms.name()} has none")
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
