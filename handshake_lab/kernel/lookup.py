"""Where a TCP state comes from: the one place that chooses a reader for this platform.

The readers (tcp_info, sock_diag, proc_tcp, psutil_states) each ask the kernel one way and
never fall back to one another; this module decides, always in the same order:

- a connection by its two ends (local, remote): NETLINK_SOCK_DIAG where the kernel lets us
  (an exact lookup, whose cost does not grow with the TIME_WAIT rows a load test leaves
  behind), else the TCP table. Found by its addresses, a connection no process holds a
  descriptor for is seen too: one not yet accepted, one already closed (TIME_WAIT).
- the TCP table of a port: a NETLINK_SOCK_DIAG dump filtered by the kernel to that port
  (what `ss` does, so its cost hardly grows with a load test's TIME_WAIT rows), else
  /proc/net/tcp(6) on Linux (also for the whole table), `netstat -anv` on macOS (which lists
  every socket to any user; the rows this process holds are marked from psutil's list of its
  own), psutil elsewhere.
- a socket we hold: TCP_INFO on Linux, psutil elsewhere.

`ConnectionLookup` is for asking about many connections again and again (the recorder's
samples): each connection's sock_diag request is prepared once, and a batch costs one send()
and one recvmmsg(). Rules: `connection_state` asks once and never waits; `wait_for_state`
polls up to a deadline and returns the last state seen, so the caller's assert shows what
the kernel said instead of hanging or raising. They and the recorder believe "no connection"
(or CLOSE) only when a second lookup right after says so too (`confirmed_states`): one lookup
can miss a connection while the kernel hands an orphaned socket over to its FIN-WAIT-2 entry,
two in a row have not (benchmarks/lookup_while_closing.py counts both).
"""

from __future__ import annotations

import dataclasses
import functools
import socket
from collections.abc import Callable

from .. import platforms
from ..model.addresses import Address, check_port, loopback_host
from ..model.states import TcpState
from ..timeouts import SHORT_TIMEOUT, poll_until
from . import netstat_states, psutil_states, sock_diag_dump, tcp_info
from .proc_tcp import TcpSocketRow, find_rows, read_tcp_table
from .sock_diag import SockDiag
from .tcp_info import AcceptQueue

#: What a lookup by addresses finds: (state, inode; 0 when no process holds it) or None.
Found = tuple[TcpState, int] | None
#: What reading a socket we hold gives: its state and, for a listener, its accept queue.
HeldState = tuple[TcpState, AcceptQueue | None]


# -- the platform choice: one predicate per reader, patched by the tests ----------------
def _sock_diag_available() -> bool:
    return platforms.is_linux() and _sock_diag_allowed()


@functools.lru_cache(maxsize=1)
def _sock_diag_allowed() -> bool:
    return SockDiag.available()  # a netlink socket opened and asked once: kept for the process


def _sock_diag_dump_available() -> bool:
    return platforms.is_linux() and hasattr(socket, "AF_NETLINK")


def _proc_tcp_available() -> bool:
    return platforms.is_linux()


def _tcp_info_available() -> bool:
    return tcp_info.has_tcp_info()


def _netstat_available() -> bool:
    return netstat_states.available()


def lists_sockets_no_process_holds() -> bool:
    """False where states come from psutil's list of this process's own sockets (macOS
    without its netstat): there a connection not accepted yet, or closed, is not listed."""
    if _proc_tcp_available() or _netstat_available():
        return True
    return not psutil_states.lists_this_process_only()


def absent_words() -> str:
    """How a table says a socket has no state: not in the kernel, or not in the list."""
    if lists_sockets_no_process_holds():
        return "not in the kernel"
    return "not listed here"


# -- the public lookups ------------------------------------------------------------------
def tcp_sockets(port: int | None = None) -> list[TcpSocketRow]:
    """The kernel's TCP sockets whose local or remote port is `port` (all when None)."""
    if port is not None:
        check_port(port)
        if _sock_diag_dump_available():
            try:
                return sock_diag_dump.read_port(port)
            except OSError:
                pass  # sock_diag forbidden here, or a kernel that refuses the dump: read the table
    if _proc_tcp_available():
        return read_tcp_table(port)
    if _netstat_available():
        return _netstat_rows(port)
    return psutil_states.tcp_sockets_from_psutil(port)


def _netstat_rows(port: int | None) -> list[TcpSocketRow]:
    """netstat's rows, each marked held (HELD_BY_A_PROCESS) where this process's own sockets,
    as psutil lists them, include it, else 0; unmarked where psutil is missing."""
    rows = netstat_states.tcp_sockets_from_netstat(port)
    try:
        own = {(row.local, row.remote) for row in psutil_states.tcp_sockets_from_psutil(port)}
    except psutil_states.PlatformCannotShow:
        return rows
    held = psutil_states.HELD_BY_A_PROCESS
    return [
        dataclasses.replace(row, inode=held if (row.local, row.remote) in own else 0)
        for row in rows
    ]


def socket_state(sock: socket.socket) -> TcpState:
    """The TCP state of a socket you hold, as the kernel sees it right now.

    A socket that was created but never connected or listened is CLOSED.
    """
    if _tcp_info_available():
        return tcp_info.read_state(sock)
    return psutil_states.socket_state_from_psutil(sock)


def connection_state(local, remote) -> TcpState | None:
    """The kernel's state of the connection local -> remote, or None if it has none.

    `local` and `remote` are (host, port) pairs as getsockname() and getpeername() give them
    (IPv6's extra flow and scope fields are ignored).
    """
    with ConnectionLookup() as lookup:
        (state,) = confirmed_states(lookup, [lookup.prepare(local, remote)])
    return state


def confirmed_states(
    lookup: ConnectionLookup, prepared: list, last: list[TcpState | None] | None = None
) -> list[TcpState | None]:
    """The state of each prepared connection (None: not in the kernel), where "not in the
    kernel" and CLOSE are believed only when a second lookup right after says so too; only
    those answers are asked again. `last`, the states seen before (the recorder's), spares
    that second lookup where nothing was there to lose: a connection not seen yet, or CLOSED.
    """
    states = [found[0] if found else None for found in lookup.states(prepared)]
    doubtful = [
        index
        for index, state in enumerate(states)
        if state in _SEEMS_GONE and (last is None or last[index] not in _SEEMS_GONE)
    ]
    if doubtful:
        again = lookup.states([prepared[index] for index in doubtful])
        for index, found in zip(doubtful, again, strict=True):
            states[index] = found[0] if found else None
    return states


_SEEMS_GONE = (None, TcpState.CLOSED)


def wait_for_state(
    local,
    remote,
    *,
    state: TcpState | None = None,
    gone: bool = False,
    timeout: float = SHORT_TIMEOUT,
) -> TcpState | None:
    """Poll until local -> remote is in `state` (or, with `gone`, has left the kernel).

    Gives up after `timeout` seconds and returns the last state seen (None: no connection).
    With neither `state` nor `gone` it asks once, like connection_state.
    """
    if state is not None and gone:
        raise ValueError("wait for a state or for the connection to be gone, not both")
    seen: TcpState | None = None
    with ConnectionLookup() as lookup:
        request = [lookup.prepare(local, remote)]

        def arrived() -> bool:
            nonlocal seen
            (seen,) = confirmed_states(lookup, request)
            return seen is None if gone else seen is state

        if state is None and not gone:
            arrived()
        else:
            poll_until(arrived, timeout=timeout)
    return seen


class ConnectionLookup:
    """Many connections' states, asked again and again; a context manager.

    `prepare(local, remote)` once per connection, then `states(prepared)` at every sample.
    `held(sock)` reads a socket we hold: (state, the accept queue for a listener, else None).
    """

    def __init__(self) -> None:
        self._diag: SockDiag | None = None
        self._closed = False
        if _sock_diag_available():
            try:
                self._diag = SockDiag()
            except OSError:  # out of descriptors, say: the TCP table still answers
                self._diag = None
        # A plain function, not a method: the recorder calls it for every socket it samples.
        self.held: Callable[[socket.socket], HeldState] = (
            tcp_info.state_and_queue if _tcp_info_available() else _held_by_psutil
        )

    def prepare(self, local, remote) -> object:
        """The lookup of local -> remote, made once, to pass to states() as often as needed."""
        local, remote = _endpoint(local), _endpoint(remote)
        if self._diag is not None:
            return self._diag.request(local, remote)
        return local, remote

    def states(self, prepared: list) -> list[Found]:
        """What the kernel holds now for each prepared lookup, in the same order."""
        if not prepared:
            return []
        if self._diag is not None:
            return self._diag.lookup_requests(prepared)
        results: list[Found] = []
        for local, remote in prepared:
            rows = find_rows(tcp_sockets(local[1]), local, remote)
            results.append((rows[0].state, rows[0].inode) if rows else None)
        return results

    def close(self) -> None:
        """Close the netlink socket (idempotent)."""
        if not self._closed:
            self._closed = True
            if self._diag is not None:
                self._diag.close()

    def __enter__(self) -> ConnectionLookup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _held_by_psutil(sock: socket.socket) -> HeldState:
    return psutil_states.socket_state_from_psutil(sock), None  # psutil has no accept queue


def _endpoint(address) -> Address:
    """(host, port) from what getsockname() gives ("localhost" read as 127.0.0.1), or a clear
    error: the lab's connections are on loopback."""
    if not isinstance(address, (tuple, list)) or len(address) < 2:
        raise TypeError(f"an end is a (host, port) pair such as server.address, got {address!r}")
    host, port = address[:2]
    return loopback_host(host), port
