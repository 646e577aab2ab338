"""TCP states on macOS and Windows, through psutil, where it can give them.

These platforms have no /proc/net/tcp and no Linux TCP_INFO. psutil lists the system's
TCP connections with their states; what it cannot tell (the accept queue, connections
that belong to no process on some platforms) is reported as an error, never made up.
A reader like the others: `lookup` decides when it is used; it calls no other reader and
only borrows the row type of `proc_tcp`, so the two rows compare alike.
"""

from __future__ import annotations

import socket

from .. import platforms
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


#: The inode of a row psutil lists as held by a process: psutil does not give the inode.
HELD_BY_A_PROCESS = -1
_ANY = ("0.0.0.0", 0)


class PlatformCannotShow(RuntimeError):
    """This platform cannot show what was asked; the message says what to use instead."""


def _psutil():
    try:
        import psutil
    except ImportError:
        raise PlatformCannotShow(
            f"{platforms.name()} has no /proc/net/tcp: install psutil (pip install psutil) to read "
            "TCP states here, or open the course on Linux or Binder for the full view"
        ) from None
    return psutil


def lists_this_process_only() -> bool:
    """True on macOS, where the lab asks psutil for its own process's connections only.

    There, psutil's documentation says, net_connections() needs root, so the lab asks for its
    own process's, as any learner may: that list misses connections no process holds a
    descriptor for, one not accepted yet or one in TIME-WAIT.
    """
    return platforms.current() == "darwin"


def _connections():
    """psutil's TCP connections: the whole system's, or this process's own (see above)."""
    psutil = _psutil()
    try:
        if lists_this_process_only():
            return psutil.Process().net_connections(kind="tcp")
        return psutil.net_connections(kind="tcp")
    except Exception as error:  # psutil.AccessDenied where this user may not list them
        raise PlatformCannotShow(
            f"{platforms.name()} would not list TCP connections to this user ({error}); "
            "open the course on Linux or Binder to see kernel states"
        ) from None


def tcp_sockets_from_psutil(port: int | None = None) -> list[TcpSocketRow]:
    """Rows like /proc/net/tcp's built from psutil. Queues, timers and uids are unknown (0,
    -1); a listener's remote end is the unspecified address, as /proc prints it; psutil gives
    no inode, so a socket it lists as held by a process gets HELD_BY_A_PROCESS and one it lists
    with no process (not accepted yet, or closed) gets 0, as /proc does."""
    return rows_from_connections(_connections(), port)


def rows_from_connections(connections, port: int | None = None) -> list[TcpSocketRow]:
    """The rows of psutil's connection tuples (pure: tests/data/platforms holds real ones).

    pid None (Linux) or 0 (Windows lists TIME_WAIT under the System Idle Process, pid 0) is
    a socket no process holds.
    """
    rows = []
    for conn in connections:
        unspecified = ("::", 0) if getattr(conn, "family", None) == socket.AF_INET6 else _ANY
        local = tuple(conn.laddr[:2]) if conn.laddr else unspecified
        remote = tuple(conn.raddr[:2]) if conn.raddr else unspecified
        if port is not None and port not in (local[1], remote[1]):
            continue
        state = _PSUTIL_STATES.get(conn.status)
        if state is None:
            continue  # psutil's NONE: not a TCP state
        # This process's own list (macOS) has no pid field: every socket in it is held.
        held = not hasattr(conn, "pid") or bool(conn.pid)
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
                inode=HELD_BY_A_PROCESS if held else 0,
            )
        )
    return rows


def socket_state_from_psutil(sock: socket.socket) -> TcpState:
    """The state of a socket we hold, found in psutil's list by its addresses (CLOSED when no
    list has it)."""
    local = sock.getsockname()[:2]
    try:
        remote_port = sock.getpeername()[1]
    except OSError:
        remote_port = None  # no peer yet: a listener, or a connect() still in progress
    if local[1] != 0:
        rows = [row for row in tcp_sockets_from_psutil(local[1]) if row.local[1] == local[1]]
        if remote_port is None:
            # A listener's row has no remote end; the connections it accepted share its port.
            rows.sort(key=lambda row: row.remote[1] != 0)
        else:
            rows = [row for row in rows if row.remote[1] == remote_port]
        if rows:
            return rows[0].state
    # Open, yet in no list: a socket only created or bound, with no connection and not
    # listening, which RFC 9293 calls CLOSED (and Linux's TCP_INFO reports as CLOSE).
    return TcpState.CLOSED
