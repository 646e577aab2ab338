"""The unprivileged evidence agrees with the wire: for one loopback connection, the saved SYN
(TCP_SAVED_SYN) is the SYN a live capture sees, field for field, and each socket's segment
counters (TCP_INFO) count what the capture shows it sent and received; a reset by close() is
one more segment on the wire and in the peer's counters.

The capture needs root or CAP_NET_RAW; the reset tests without capture run everywhere."""

from __future__ import annotations

import dataclasses
import socket
import sys

import pytest

from handshake_lab.capture.resets import CAUSES, reset_on_close
from handshake_lab.capture.sniffer import LoopbackSniffer, open_packet_socket
from handshake_lab.kernel.saved_syn import save_syns, saved_syn
from handshake_lab.kernel.segment_counts import segment_counts
from handshake_lab.timeouts import SHORT_TIMEOUT


def _can_capture() -> bool:
    try:
        open_packet_socket().close()
    except (OSError, AttributeError):  # PermissionError without CAP_NET_RAW; no AF_PACKET
        return False
    return True


pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]
needs_capture = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _can_capture(),
    reason="comparing with the wire needs a live capture, which needs root or CAP_NET_RAW",
)


@needs_capture
def test_saved_syn_and_segment_counts_agree_with_the_capture():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        save_syns(listener)
        listener.listen()
        listener.settimeout(SHORT_TIMEOUT)
        with LoopbackSniffer(listener.getsockname()[1]) as sniffer:
            with socket.create_connection(listener.getsockname(), SHORT_TIMEOUT) as client:
                conn, _ = listener.accept()
                with conn:
                    syn = saved_syn(conn)
                    client_counts, server_counts = segment_counts(client), segment_counts(conn)
                    client_port = client.getsockname()[1]
            # connect() returned after sending the ACK: all three are on the wire already.
            assert sniffer.wait_for(lambda seen: len(seen) >= 3, SHORT_TIMEOUT), sniffer.segments
            wire = list(sniffer.segments[:3])
    from_client = [s for s in wire if s.src_port == client_port]
    from_server = [s for s in wire if s.src_port != client_port]
    assert [s.flags for s in wire] == ["SYN", "SYN+ACK", "ACK"], wire
    # The kernel keeps no arrival time with the saved SYN: every other field must match.
    assert dataclasses.replace(syn, time=wire[0].time) == wire[0], (syn, wire[0])
    assert {"MSS", "SACK_PERM", "TS", "WS"} <= {name for name, _ in syn.options}, syn.options
    # The client counted what it put on the wire and what came back.
    assert (client_counts.sent, client_counts.received) == (len(from_client), len(from_server))
    # The accepted socket counts the SYN and the ACK as received (tcp_create_openreq_child
    # starts at 1, tcp_child_process counts the ACK), but not the SYN+ACK as sent: the
    # listener's request socket sent it, before this socket existed.
    assert (server_counts.sent, server_counts.received) == (len(from_server) - 1, len(from_client))
    assert (client_counts.sent, client_counts.received) == (2, 1), client_counts
    assert (server_counts.sent, server_counts.received) == (0, 2), server_counts
    assert client_counts.retransmitted == server_counts.retransmitted == 0


@needs_capture
@pytest.mark.parametrize("cause", CAUSES)
def test_a_reset_by_close_is_one_rst_ack_on_the_wire_and_in_the_peers_counters(cause):
    reset = reset_on_close(cause)
    assert not reset.why_not_captured, reset.why_not_captured
    sent_by_client = [s.flags for s in reset.from_client]
    # Everything the client sent before close(), as it counted, then exactly one RST+ACK.
    assert len(sent_by_client) == reset.closer_counts.sent + 1, reset.as_text()
    assert sent_by_client[-1] == "RST+ACK" and "RST" not in "".join(sent_by_client[:-1])
    # The server socket received every segment the client sent, the SYN and the RST included.
    assert reset.peer_after.received == len(sent_by_client), reset.as_text()


@pytest.mark.parametrize("cause", CAUSES)
def test_a_reset_by_close_without_capture_shows_in_the_error_and_the_counters(cause):
    reset = reset_on_close(cause)
    assert reset.peer_error == "ConnectionResetError (ECONNRESET)", reset.as_text()
    assert reset.closer_left is None, reset.as_text()  # no TIME-WAIT, nothing at all
    assert reset.data_waiting is (cause == "unread"), reset.as_text()
    grew = reset.peer_after.since(reset.peer_before)
    assert (grew.received, grew.sent) == (1, 0), reset.as_text()  # the RST, nothing sent back
    assert reset.peer_before.received == reset.closer_counts.sent, reset.as_text()


def test_an_unknown_cause_says_which_exist():
    with pytest.raises(ValueError, match="linger"):
        reset_on_close("timeout")
