"""close() that sends a reset: what the peer gets, what the kernel keeps, and the RST itself.

Two ways make close() send RST instead of FIN: SO_LINGER (1, 0) (tcp_close() calls
tcp_disconnect(), which sends an active reset) and data received but never read (tcp_close()
sends an active reset when data_was_unread, RFC 2525 2.17); both in net/ipv4/tcp.c. Where
this process may capture (root or CAP_NET_RAW) a LoopbackSniffer records every segment of the
connection, so the reset is shown, not inferred. Everywhere, the evidence without packets is
kept too: the error the peer's next recv() raises, what is left of the closer's side, and the
peer's segment counters (TCP_INFO) just before and after: tcp_v4_rcv() counts every arriving
segment, the RST included. The closer's own counters cannot show its RST: its socket is gone
once close() returns.

Rules: every socket is closed and every wait has a timeout; before close() we wait until the
peer has received every segment the closer sent, so "one more segment" means the RST.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import select

from ..kernel.lookup import connection_state
from ..kernel.segment_counts import SegmentCounts, segment_counts
from ..model.packets import Segment
from ..model.states import TcpState
from ..net.clients import close, connect, receive, send
from ..net.server import LoopbackServer
from ..timeouts import SHORT_TIMEOUT, poll_until
from .sniffer import sniffer_or_why_not

__all__ = ["CAUSES", "ResetOnClose", "reset_on_close"]

#: What makes close() send RST: SO_LINGER (1, 0), or data received and never read.
CAUSES = ("linger", "unread")
_UNREAD_LINE = b"a reply the client never reads\n"


@dataclasses.dataclass(frozen=True)
class ResetOnClose:
    """One connection the client closed with a reset, seen from every side that could be asked."""

    cause: str  # 'linger' or 'unread'
    data_waiting: bool  # whether unread data sat in the client's socket when it closed
    peer_error: str  # what the server's next recv() gave, e.g. "ConnectionResetError (ECONNRESET)"
    closer_left: TcpState | None  # the client's side in the kernel after close(); None: nothing
    closer_counts: SegmentCounts  # the client's counters just before close()
    peer_before: SegmentCounts  # the server socket's counters just before the client's close()
    peer_after: SegmentCounts  # ... and after the reset reached it
    segments: tuple[Segment, ...]  # every segment of the connection; () when not captured
    client_port: int
    why_not_captured: str  # '' when the segments were captured

    @property
    def from_client(self) -> tuple[Segment, ...]:
        """The captured segments the client sent (handshake included); () when not captured."""
        return tuple(s for s in self.segments if s.src_port == self.client_port)

    def outcome_text(self) -> str:
        """What the sockets' calls and the kernel's table show, the same on every Linux."""
        lines = [f"unread data in the client when it closed: {self.data_waiting}"]
        lines.append(f"the server's next recv(): {self.peer_error}")
        lines.append(
            f"the client's side in the kernel: {self.closer_left or 'nothing left, no TIME-WAIT'}"
        )
        return "\n".join(lines if self.cause == "unread" else lines[1:])

    def wire_text(self) -> str:
        """The server socket's counters, and the segments where they were captured."""
        lines = [
            f"the server socket's counters: {self.peer_before} before the client's close(), "
            f"{self.peer_after} after"
        ]
        if self.why_not_captured:
            lines.append(
                f"not captured ({self.why_not_captured}): the error and the counters above "
                "are the evidence"
            )
            return "\n".join(lines)
        lines.append("captured on the loopback interface:")
        for segment in self.segments:
            who = "client" if segment.src_port == self.client_port else "server"
            data = f" ({segment.payload_len} bytes)" if segment.payload_len else ""
            lines.append(f"  {who:6} {segment.flags:8} seq={segment.seq} ack={segment.ack}{data}")
        return "\n".join(lines)

    def as_text(self) -> str:
        return f"{self.outcome_text()}\n{self.wire_text()}"


def _next_receive(sock) -> str:
    try:
        data = receive(sock, timeout=SHORT_TIMEOUT)
    except OSError as error:
        code = errno.errorcode.get(error.errno or 0)
        return f"{type(error).__name__} ({code})" if code else type(error).__name__
    return repr(data)


def reset_on_close(cause: str = "linger") -> ResetOnClose:
    """Connect, make the client's close() send RST (`cause`: 'linger' or 'unread'), observe."""
    if cause not in CAUSES:
        raise ValueError(f"cause must be one of {CAUSES}, got {cause!r}")
    with LoopbackServer(auto_accept=False) as server, contextlib.ExitStack() as stack:
        sniffer, why_not = sniffer_or_why_not(stack, server.address[1])
        client = connect(server.address)
        try:
            served = stack.enter_context(server.accept())
        except BaseException:
            close(client)
            raise
        client_end = client.getsockname()[:2]
        data_waiting = False
        try:
            if cause == "unread":
                send(served, _UNREAD_LINE)
                data_waiting = bool(select.select([client], [], [], SHORT_TIMEOUT)[0])
            closer_counts = segment_counts(client)
            # Every segment the client sent has reached the server socket (its ACK of the
            # reply may still be on its way): only then does "one more" mean the RST.
            poll_until(
                lambda: segment_counts(served).received >= closer_counts.sent,
                timeout=SHORT_TIMEOUT,
            )
            peer_before = segment_counts(served)
        finally:
            close(client, reset=cause == "linger")
        peer_error = _next_receive(served)
        peer_after = segment_counts(served)
        closer_left = connection_state(client_end, server.address)
        segments: tuple[Segment, ...] = ()
        if sniffer is not None:
            sniffer.wait_for(lambda seen: any(s.has("RST") for s in seen), SHORT_TIMEOUT)
            segments = tuple(sniffer.segments)
    return ResetOnClose(
        cause,
        data_waiting,
        peer_error,
        closer_left,
        closer_counts,
        peer_before,
        peer_after,
        segments,
        client_end[1],
        why_not,
    )
