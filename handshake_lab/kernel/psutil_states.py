"""TCP states on macOS and Windows, through psutil, where it can give them.

These platforms have no /proc/net/tcp and no Linux TCP_INFO. psutil lists the system's
TCP connections with their states; what it cannot tell (the accept queue, connections
that belong to no process on some platforms) is reported as an error, never made up.
A reader like the others: `lookup` decides when it is used; it calls no other reader and
only borrows the row type of `proc_tcp`, so the two rows compare alike.
"""

from __future__ import annotations

import socket
import sys

from ..model.states import TcpState
from .proc_tcp import TcpSocketRow

_PSUTIL_STATES = {
    "ESTABLISHED": TcpState.ESTABLISHED,
    "SYN_SENT": TcpState.SYN_SENT,
    "SYN_RECV": TcpState.SYN_RECEIVED,
    "FIN_WAIT1": TcpState.FIN_WAIT_1,
    "FIN_WAIT2": TcpState.FIN_WAIT_2,
    "TIME_WAIT": TcpState.TIME_WAIT,
    "CLOSE": TcpState.CLOSED,
    "CLOSE_WAIT": TcpState.CLOSE_WAIT,
    "LAST_ACK": TcpState.LAST_ACK,
    "LISTEN": TcpState.LISTEN,
    "CLOSING": TcpState.CLOSING,
}


class PlatformCannotShow(RuntimeError):
    """This platform cannot show what was asked; the message says what to use instead."""


def _psutil():
    try:
        import psutil
    except ImportError:
        raise PlatformCannotShow(
            f"{sys.platform} has no /proc/net/tcp: install psutil (pip install psutil) to read "
            "TCP states here, or open the course on Linux or Binder for the full view"
        ) from None
    return psutil


def _connections():
    try:
        return _psutil().net_connections(kind="tcp")
    except Exception as error:  # psutil.AccessDenied on macOS without privileges
        raise PlatformCannotShow(
            f"{sys.platform} would not list TCP connections to this user ({error}); "
            "open the course on Linux or Binder to see kernel states"
        ) from None


def tcp_sockets_from_psutil(port: int | None = None) -> list[TcpSocketRow]:
    """Rows like /proc/net/tcp's built from psutil (queues, timers and inodes unknown: 0)."""
    rows = []
    for conn in _connections():
        local = tuple(conn.laddr) if conn.laddr else ("", 0)
        remote = tuple(conn.raddr) if conn.raddr else ("", 0)
        if port is not None and port not in (local[1], remote[1]):
            continue
        state = _PSUTIL_STATES.get(conn.status)
        if state is None:
            continue  # psutil's NONE: not a TCP state
        rows.append(
            TcpSocketRow(
                local,
                remote,
                state,
                tx_queue=0,
                rx_queue=0,
                timer="none",
                timer_seconds=0.0,
                retransmits=0,
                uid=-1,
                inode=0,
            )
        )
    return rows


def socket_state_from_psutil(sock: socket.socket) -> TcpState:
    """The state of a socket we hold, found in psutil's list by its addresses."""
    local = sock.getsockname()[:2]
    try:
        remote = sock.getpeername()[:2]
    except OSError:
        remote = None
    for row in tcp_sockets_from_psutil(local[1]):
        if row.local[1] == local[1] and (remote is None or row.remote[1] == remote[1]):
            return row.state
    raise PlatformCannotShow(f"psutil does not list the socket at {local}: its state is unknown")
