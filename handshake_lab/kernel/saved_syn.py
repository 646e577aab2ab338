"""The client's SYN as the server's kernel received it, read without root (Linux).

TCP_SAVE_SYN (27) on a listener makes the kernel keep the IP and TCP headers of each SYN it
answers; TCP_SAVED_SYN (28) on the accepted socket hands them over once (include/uapi/linux/
tcp.h, net/ipv4/tcp.c). The kernel reports no errno when there is nothing to hand over: the
getsockopt returns no bytes both when the listener did not save SYNs and when the SYN was read
already; the accepted socket's own TCP_SAVE_SYN flag (copied from the listener) tells the two
apart. A buffer too small for the headers gives EINVAL, so we ask for the most there can be.

Rules: a reader only (it opens no socket); Linux only: elsewhere a clear error says so.
``net/syn_experiments`` builds two experiments on it.
"""

from __future__ import annotations

import errno
import socket

from .. import platforms
from ..model.packets import Segment, decode_frame

__all__ = ["TCP_SAVE_SYN", "TCP_SAVED_SYN", "require_linux", "save_syns", "saved_syn"]

TCP_SAVE_SYN = 27
TCP_SAVED_SYN = 28
#: The largest saved SYN: IPv6 header (40) + TCP header with options (60), plus a link header.
_SAVED_SYN_MAX = 512


def require_linux() -> None:
    if not platforms.is_linux():
        raise OSError(
            errno.ENOPROTOOPT,
            f"saved SYNs (TCP_SAVE_SYN) are a Linux feature; {platforms.name()} has none: "
            "run this on Linux or Binder",
        )


def save_syns(listener: socket.socket) -> None:
    """Make the kernel keep each SYN this listener answers, for `saved_syn` after accept().

    Call it before the clients connect (before listen() is simplest): a SYN that arrived
    earlier was not kept.
    """
    require_linux()
    if not isinstance(listener, socket.socket) or listener.type != socket.SOCK_STREAM:
        raise TypeError(f"save_syns needs a TCP listening socket, got {listener!r}")
    listener.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1)


def saved_syn(conn: socket.socket) -> Segment:
    """The SYN that opened `conn` (an accepted socket), decoded; the kernel gives it once.

    The Segment's time is 0.0: the kernel keeps the headers, not when they arrived.
    """
    require_linux()
    if not isinstance(conn, socket.socket) or conn.type != socket.SOCK_STREAM:
        raise TypeError(f"saved_syn needs an accepted TCP socket, got {conn!r}")
    raw = conn.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, _SAVED_SYN_MAX)
    if not raw:
        if not conn.getsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN):
            raise LookupError(
                "the kernel kept no SYN for this connection: call save_syns(listener) "
                "before the client connects, then accept() and ask again"
            )
        raise LookupError(
            "the kernel has no SYN left for this connection: it hands it over once, and "
            "it was read already (or the SYN came before save_syns): keep the first answer"
        )
    # TCP_SAVE_SYN=2 also keeps the link-layer header (Ethernet, on loopback).
    saved_with_link = conn.getsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN) == 2
    return decode_frame(raw, link="ethernet" if saved_with_link else "raw")
