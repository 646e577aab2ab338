"""TCP_INFO's segment counters on real loopback sockets, and their decoding."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from handshake_lab import platforms
from handshake_lab.kernel.segment_counts import (
    NEEDED_BYTES,
    SegmentCounts,
    decode_segment_counts,
    segment_counts,
)
from handshake_lab.timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, poll_until

pytestmark = pytest.mark.kernel
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _raw(total_retrans=0, segs_out=0, segs_in=0, data_in=0, data_out=0, size=NEEDED_BYTES):
    raw = bytearray(size)
    struct.pack_into("=I", raw, 100, total_retrans)
    struct.pack_into("=II", raw, 136, segs_out, segs_in)
    struct.pack_into("=II", raw, 152, data_in, data_out)
    return bytes(raw)


def test_the_fields_are_read_where_the_kernel_header_puts_them():
    counts = decode_segment_counts(_raw(3, 10, 9, 4, 5, size=232))
    assert counts == SegmentCounts(
        sent=10, received=9, retransmitted=3, data_sent=5, data_received=4
    )
    assert str(counts) == "10 sent, 9 received, 3 retransmitted"
    assert counts.since(SegmentCounts(2, 2, 0, 1, 1)) == SegmentCounts(8, 7, 3, 4, 3)


def test_a_kernel_without_the_fields_is_told_not_read_as_zero():
    with pytest.raises(OSError, match="too few for the segment counters"):
        decode_segment_counts(_raw()[:104])


@linux_only
def test_the_handshake_counted_on_both_ends():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(LOOPBACK_TIMEOUT)
        with socket.create_connection(listener.getsockname(), timeout=LOOPBACK_TIMEOUT) as client:
            after_connect = segment_counts(client)
            conn, _ = listener.accept()
            with conn:
                # SYN and ACK out, SYN+ACK in; the accepted socket counts the SYN and the ACK,
                # and sent nothing: the request socket sent the SYN+ACK.
                assert (after_connect.sent, after_connect.received) == (2, 1), after_connect
                assert (segment_counts(conn).sent, segment_counts(conn).received) == (0, 2)
                client.sendall(b"hello")
                arrived = poll_until(
                    lambda: segment_counts(conn).data_received == 1, timeout=SHORT_TIMEOUT
                )
                assert arrived, segment_counts(conn)
                assert segment_counts(client).data_sent == 1 and segment_counts(client).sent == 3


def test_bad_input_says_what_to_pass():
    with pytest.raises(TypeError, match="socket.socket"):
        segment_counts("127.0.0.1")  # type: ignore[arg-type]
    closed = socket.socket()
    closed.close()
    if sys.platform.startswith("linux"):
        with pytest.raises(ValueError, match="before close"):
            segment_counts(closed)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(ValueError):
            segment_counts(udp)


def test_off_linux_the_error_says_so(monkeypatch):
    monkeypatch.setenv(platforms.SWITCH, "darwin")  # as on macOS
    with socket.socket() as sock, pytest.raises(OSError, match="Linux"):
        segment_counts(sock)
