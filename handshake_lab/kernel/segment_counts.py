"""How many segments one socket has sent and received, from TCP_INFO, without privileges.

struct tcp_info (include/uapi/linux/tcp.h) has grown over the years; its segment counters sit
past the first 104 bytes: ``tcpi_total_retrans`` (a u32 at byte 100), ``tcpi_segs_out`` and
``tcpi_segs_in`` (u32 at 136 and 140, after the pacing rates and byte counters),
``tcpi_data_segs_in`` and ``tcpi_data_segs_out`` (u32 at 152 and 156). The kernel copies no
more than it has and says how much through the returned length, so a kernel too old for a
field is detected, never read as zero.

The counts include every segment: SYN, ACK and FIN as well as data. A socket made by accept()
has the client's SYN counted as received (tcp_create_openreq_child starts segs_in at 1) and
then the handshake's last ACK: 2 received. Its SYN+ACK was sent by the request socket, before
this socket existed, so it has sent 0.

Rules: Linux only (a clear error elsewhere); pure decoding is separate from the getsockopt.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from .. import platforms

__all__ = ["SegmentCounts", "decode_segment_counts", "read_counts", "segment_counts"]

_TOTAL_RETRANS = struct.Struct("=I")  # at byte 100
_SEGS = struct.Struct("=II")  # segs_out, segs_in at byte 136
_DATA_SEGS = struct.Struct("=II")  # data_segs_in, data_segs_out at byte 152
#: The bytes the fields above need: data_segs_out ends at byte 160.
NEEDED_BYTES = 160
#: Asked for: room for a newer, longer struct (the kernel copies no more than it has).
_ASKED_BYTES = 512


@dataclass(frozen=True)
class SegmentCounts:
    """One socket's segments so far, as its kernel counted them (all of them: SYN, ACK, FIN...)."""

    sent: int
    received: int
    retransmitted: int
    data_sent: int
    data_received: int

    def since(self, earlier: SegmentCounts) -> SegmentCounts:
        """What happened between `earlier` and these counts."""
        return SegmentCounts(
            self.sent - earlier.sent,
            self.received - earlier.received,
            self.retransmitted - earlier.retransmitted,
            self.data_sent - earlier.data_sent,
            self.data_received - earlier.data_received,
        )

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.received} received"
        return text + (f", {self.retransmitted} retransmitted" if self.retransmitted else "")


def decode_segment_counts(raw: bytes) -> SegmentCounts:
    """The counters in `raw`, the bytes getsockopt(TCP_INFO) returned (pure)."""
    if len(raw) < NEEDED_BYTES:
        raise OSError(
            f"this kernel's TCP_INFO has {len(raw)} bytes, too few for the segment counters "
            f"(they need {NEEDED_BYTES}, a newer kernel): use packet capture instead"
        )
    (retransmitted,) = _TOTAL_RETRANS.unpack_from(raw, 100)
    sent, received = _SEGS.unpack_from(raw, 136)
    data_received, data_sent = _DATA_SEGS.unpack_from(raw, 152)
    return SegmentCounts(sent, received, retransmitted, data_sent, data_received)


def read_counts(sock: socket.socket) -> SegmentCounts | None:
    """`segment_counts` for a socket the caller knows is an open TCP socket on Linux, or None
    where the kernel cannot say (no TCP_INFO, or too short): for the recorder's samples."""
    if not platforms.is_linux():
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _ASKED_BYTES)
    except (OSError, AttributeError):
        return None
    return decode_segment_counts(raw) if len(raw) >= NEEDED_BYTES else None


def segment_counts(sock: socket.socket) -> SegmentCounts:
    """How many segments `sock` has sent and received so far (Linux's TCP_INFO)."""
    if not isinstance(sock, socket.socket):
        raise TypeError(f"segment_counts needs a socket.socket, got {type(sock).__name__}")
    if not platforms.is_linux() or not hasattr(socket, "TCP_INFO"):
        raise OSError(
            f"segment counters come from Linux's TCP_INFO; {platforms.name()} has none: "
            "run this on Linux or Binder"
        )
    if sock.fileno() < 0:
        raise ValueError("this socket is closed: count its segments before close()")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("TCP_INFO is for TCP sockets: create the socket with SOCK_STREAM")
    return decode_segment_counts(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _ASKED_BYTES))
