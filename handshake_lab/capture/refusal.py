"""A connect() to a port where nobody listens: the error, how long it took, and the RST itself.

The kernel answers a SYN for a port with no listener with a reset (tcp_v4_send_reset, from
tcp_v4_rcv's no_tcp_socket path in net/ipv4/tcp_ipv4.c) and connect() fails with
ECONNREFUSED. Where this process may capture (root or CAP_NET_RAW) a LoopbackSniffer records
the server's answer, so the reset is shown, not inferred; elsewhere ``why_not_captured`` says
in one sentence that the error code is the evidence. Rules: the port is one the kernel gave a
listener that has just closed; every socket is closed; every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time

from .. import platforms
from ..model.packets import Segment
from ..net.clients import close, connect
from ..net.server import LoopbackServer
from ..timeouts import SHORT_TIMEOUT
from .sniffer import LoopbackSniffer

__all__ = ["Refusal", "refuse_connection"]


@dataclasses.dataclass(frozen=True)
class Refusal:
    """What connect() to a closed port met: its error, its duration and the server's reply."""

    error: str  # the exception connect() raised, e.g. 'ConnectionRefusedError'
    seconds: float
    replies: tuple[Segment, ...]  # what came back to the client's port; () when not captured
    why_not_captured: str  # '' when the replies were captured


def _entered_sniffer(stack: contextlib.ExitStack, port: int) -> tuple[LoopbackSniffer | None, str]:
    """A running sniffer of `port` (closed by `stack`), or None and why this process cannot."""
    if not platforms.is_linux() or not hasattr(socket, "AF_PACKET"):
        return None, "this system has no Linux packet sockets, so the error code is the evidence"
    try:
        return stack.enter_context(LoopbackSniffer(port)), ""
    except PermissionError:
        return (
            None,
            "capturing the reset needs root or CAP_NET_RAW, so the error code is the evidence",
        )


def refuse_connection() -> Refusal:
    """Connect to a port whose listener has just closed; capture the reply where allowed."""
    with LoopbackServer(auto_accept=False) as server:
        closed_address = server.address  # once the block ends, nobody listens here
    with contextlib.ExitStack() as stack:
        sniffer, why_not = _entered_sniffer(stack, closed_address[1])
        started = time.perf_counter()
        try:
            close(connect(closed_address, timeout=SHORT_TIMEOUT))
            error = "no error"
        except OSError as raised:
            error = type(raised).__name__
        seconds = time.perf_counter() - started
        replies: tuple[Segment, ...] = ()
        if sniffer is not None:
            sniffer.wait_for(lambda segments: any(s.has("RST") for s in segments), SHORT_TIMEOUT)
            replies = tuple(s for s in sniffer.segments if s.src_port == closed_address[1])
    return Refusal(error, seconds, replies, why_not)
