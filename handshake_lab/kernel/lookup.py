"""The kernel's state of one connection by its addresses, without privileges.

A connection is found by its two ends (local, remote), so this also sees connections no
process holds a descriptor for: one not yet accepted, and one already closed (FIN_WAIT2,
TIME_WAIT). Where the kernel lets us, the lookup is an exact sock_diag query, whose cost
does not grow with the TIME_WAIT rows a load test leaves behind; otherwise the TCP table
(procnet, which falls back to psutil off Linux).

Rules: `connection_state` asks once and never waits; `wait_for_state` polls every
millisecond up to a deadline and returns the last state seen, so the caller's assert shows
what the kernel said instead of hanging or raising.
"""

from __future__ import annotations

import functools
import time

from ..model.states import TcpState
from ..timeouts import SHORT_TIMEOUT
from .proc_tcp import find_rows, tcp_sockets
from .sock_diag import SockDiag

Endpoint = tuple[str, int]

#: How often wait_for_state asks again: a FIN and its ACK cross loopback in microseconds.
POLL_INTERVAL = 0.001


@functools.lru_cache(maxsize=1)
def _sock_diag_available() -> bool:
    return SockDiag.available()


def connection_state(local, remote) -> TcpState | None:
    """The kernel's state of the connection local -> remote, or None if it has none.

    `local` and `remote` are (host, port) pairs as getsockname() and getpeername() give them
    (IPv6's extra flow and scope fields are ignored).
    """
    local, remote = _endpoint(local), _endpoint(remote)
    if _sock_diag_available():
        with SockDiag() as diag:
            found = diag.lookup(local, remote)
        return found[0] if found else None
    rows = find_rows(tcp_sockets(local[1]), local, remote)
    return rows[0].state if rows else None


def wait_for_state(local, remote, *, state: TcpState | None = None, gone: bool = False,
                   timeout: float = SHORT_TIMEOUT) -> TcpState | None:
    """Poll until local -> remote is in `state` (or, with `gone`, has left the kernel).

    Gives up after `timeout` seconds and returns the last state seen (None: no connection).
    With neither `state` nor `gone` it asks once, like connection_state.
    """
    if state is not None and gone:
        raise ValueError("wait for a state or for the connection to be gone, not both")
    deadline = time.monotonic() + timeout
    seen = connection_state(local, remote)

    def waiting() -> bool:
        if gone:
            return seen is not None
        return state is not None and seen is not state

    while waiting() and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        seen = connection_state(local, remote)
    return seen


def _endpoint(address) -> Endpoint:
    host, port = address[:2]
    return host, port
