"""TCP_DEFER_ACCEPT, Linux's listener option, set in one place that says where it is missing.

With it, the kernel keeps a new connection in SYN-RECEIVED after the client's ACK until the
client sends data (or the seconds pass), so accept() waits for data. macOS and Windows have
no such option (BSD's accept filters are not on macOS); there the setter raises an OSError
that says so, and the course's cells show the rest of the handshake without it.
"""

from __future__ import annotations

import errno
import socket

from .. import platforms


def available() -> bool:
    """True where a listener can defer accept() until data arrives."""
    return platforms.is_linux() and hasattr(socket, "TCP_DEFER_ACCEPT")


def set_defer_accept(listener: socket.socket, seconds: int) -> None:
    """Set TCP_DEFER_ACCEPT on `listener`, or raise OSError(ENOPROTOOPT) saying it is Linux's."""
    if not available():
        raise OSError(
            errno.ENOPROTOOPT,
            f"TCP_DEFER_ACCEPT is Linux's; {platforms.name()} has none: run this on Linux "
            "or Binder to see a connection held in SYN-RECEIVED",
        )
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, seconds)
