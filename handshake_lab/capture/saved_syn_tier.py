"""The saved-SYN tier: the client's real SYN and each end's segment counts; any Linux, no root.

The server's kernel keeps the SYN it answers (TCP_SAVE_SYN on the listener, read once with
TCP_SAVED_SYN after accept()) and every TCP socket counts the segments it sends and receives
(TCP_INFO). Neither needs root or a namespace. The SYN+ACK and the ACK are not seen here:
the counts after the handshake show that they happened, and nothing more.
Rules: the listener, the client and the accepted socket are all closed on the way out, and
every wait is bounded (``LoopbackServer`` and ``connect`` carry the lab's timeouts).
"""

from __future__ import annotations

import socket

from .. import platforms
from ..kernel.saved_syn import TCP_SAVE_SYN, saved_syn
from ..kernel.segment_counts import SegmentCounts, segment_counts
from ..model.packets import Segment
from ..net.clients import close, connect
from ..net.server import LoopbackServer

__all__ = ["saved_syn_handshake", "saved_syn_unavailable"]


def saved_syn_unavailable() -> str | None:
    """Why this machine cannot read saved SYNs and segment counters, or None if it can."""
    if not platforms.is_linux():
        return f"saved SYNs and segment counters are Linux features, which {platforms.name()} lacks"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1)
            segment_counts(probe)
    except OSError as error:
        return f"this kernel cannot save SYNs or count segments ({error})"
    return None


def saved_syn_handshake() -> tuple[Segment, dict[str, SegmentCounts]]:
    """Connect and accept once on 127.0.0.1: (the client's SYN as the server's kernel kept it,
    {'client': counts, 'server': the accepted socket's counts}) right after the handshake."""
    with LoopbackServer(auto_accept=False, save_syn=True) as server:
        client = connect(server.address)
        try:
            accepted = server.accept()
            syn = saved_syn(accepted)
            counts = {"client": segment_counts(client), "server": segment_counts(accepted)}
        finally:
            close(client)
    return syn, counts
