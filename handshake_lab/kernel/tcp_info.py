"""The kernel's view of one socket you hold, from getsockopt(TCP_INFO), without privileges.

struct tcp_info (include/uapi/linux/tcp.h) begins with eight bytes (tcpi_state first) and
then 32-bit fields: rto, ato, snd_mss, rcv_mss, unacked, sacked, ... On a LISTEN socket
the kernel reuses unacked for the accept-queue length and sacked for its maximum.
`wait_for_syn_retransmit` is the one function here that waits: it polls, bounded by a timeout.
Linux only, and it never falls back to another reader: `lookup` chooses psutil on other
platforms, and `accept_queue` says what they cannot show.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import NamedTuple

from .. import platforms
from ..model.states import TcpState
from ..timeouts import KERNEL_TIMER_TIMEOUT, poll_until

_TCP_INFO_HEAD = struct.Struct("8B24I")
_UNACKED, _SACKED, _RETRANSMITS = 12, 13, 2

#: How often wait_for_syn_retransmit asks: a SYN's first retry comes after about a second.
RETRANSMIT_POLL_INTERVAL = 0.005


class AcceptQueue(NamedTuple):
    """Connections finished by the kernel and waiting for accept(), and the most it holds."""

    length: int
    maximum: int


def _tcp_info(sock: socket.socket) -> tuple[int, ...]:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket.socket, got {type(sock).__name__}")
    if sock.fileno() < 0:
        raise ValueError(
            "this socket is closed: the kernel state of a closed socket can only be "
            "found by its addresses (see handshake_lab.tcp_sockets)"
        )
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("TCP_INFO is for TCP sockets: create the socket with SOCK_STREAM")
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_HEAD.size)
    return _TCP_INFO_HEAD.unpack(raw.ljust(_TCP_INFO_HEAD.size, b"\0"))


def has_tcp_info() -> bool:
    """True where getsockopt(TCP_INFO) gives Linux's struct tcp_info."""
    return platforms.is_linux() and hasattr(socket, "TCP_INFO")


def read_state(sock: socket.socket) -> TcpState:
    """The TCP state of `sock` as the kernel sees it right now (Linux's TCP_INFO).

    A socket that was created but never connected or listened is CLOSED.
    """
    return TcpState.from_code(_tcp_info(sock)[0])


def state_and_queue(sock: socket.socket) -> tuple[TcpState, AcceptQueue | None]:
    """The state and, for a listener only, its accept queue, in one getsockopt (for sampling)."""
    info = _tcp_info(sock)
    state = TcpState.from_code(info[0])
    if state is TcpState.LISTEN:
        return state, AcceptQueue(info[_UNACKED], info[_SACKED])
    return state, None


def syn_retransmits(sock: socket.socket) -> int:
    """How many times the kernel has retransmitted this socket's unanswered segment (its SYN)."""
    return _tcp_info(sock)[_RETRANSMITS]


def wait_for_syn_retransmit(
    sock: socket.socket, started: float, *, timeout: float = KERNEL_TIMER_TIMEOUT
) -> float:
    """Poll a SYN-SENT socket until the kernel has retransmitted its SYN once; seconds taken.

    `started` is a time.monotonic() taken just before connect(); the result is the seconds
    from it until the retransmission count became 1 (the polling adds at most
    RETRANSMIT_POLL_INTERVAL). Raises TimeoutError after `timeout` seconds from `started`.
    """
    left = max(0.0, started + timeout - time.monotonic())
    if not poll_until(
        lambda: syn_retransmits(sock) >= 1, timeout=left, interval=RETRANSMIT_POLL_INTERVAL
    ):
        raise TimeoutError(
            f"the kernel did not retransmit the SYN within {timeout} s: "
            "is the socket still in SYN-SENT, its SYN unanswered?"
        )
    return time.monotonic() - started


def accept_queue(listener: socket.socket) -> AcceptQueue:
    """(length, maximum) of a listening socket's accept queue."""
    if not has_tcp_info():
        raise NotImplementedError(
            f"{platforms.name()} does not expose the accept queue to Python; "
            "the course shows it on Linux"
        )
    info = _tcp_info(listener)
    state = TcpState.from_code(info[0])
    if state is not TcpState.LISTEN:
        raise ValueError(
            f"accept_queue() needs a listening socket, this one is {state}: call listen() first"
        )
    return AcceptQueue(length=info[_UNACKED], maximum=info[_SACKED])
