"""Both ends shut down while neither reads: FINs wait behind unsent data. Without privileges.

Each end writes until its send buffer is full, so the peer's receive window is full and the
rest waits unsent; then both call shutdown(SHUT_WR): the FIN is queued behind that data, and
both ends are in FIN-WAIT-1 before either FIN has left. When the client reads everything, the
server's data and then its FIN arrive while the client's own FIN is still queued: tcp_fin()
in FIN-WAIT-1 acknowledges it and moves the client to CLOSING (net/ipv4/tcp_input.c). That
ACK reaches the server at once, so the server goes to FIN-WAIT-2, not CLOSING: only one end
shows CLOSING this way. When the server reads in turn, the client's data and FIN flow; each
end's FIN is acknowledged and both end in TIME-WAIT.

Rules: the states are read by addresses (sock_diag), each wait is bounded, sockets closed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..kernel.lookup import ConnectionLookup
from ..model.states import TcpState
from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, poll_until
from .clients import close, connect
from .server import LoopbackServer

_CHUNK = 65536


@dataclass(frozen=True)
class Step:
    """What was done, and the client's and server's states once the kernel had settled."""

    done: str
    client: TcpState | None
    server: TcpState | None


def close_behind_full_windows() -> tuple[Step, ...]:
    """Run the experiment (see the module): the states after each of its three steps."""
    with LoopbackServer(auto_accept=False) as server, ConnectionLookup() as lookup:
        client = connect(server.address)
        served = server.accept()
        try:
            requests = [
                lookup.prepare(client.getsockname()[:2], server.address),
                lookup.prepare(server.address, client.getsockname()[:2]),
            ]

            def settled(expected: tuple[TcpState, TcpState]) -> tuple[TcpState | None, ...]:
                seen: list[tuple[TcpState | None, ...]] = [()]

                def arrived() -> bool:
                    seen[0] = tuple(row[0] if row else None for row in lookup.states(requests))
                    return seen[0] == expected

                poll_until(arrived, timeout=SHORT_TIMEOUT)
                return seen[0]

            for sock in (client, served):
                _fill(sock)
                sock.shutdown(socket.SHUT_WR)
            steps = [
                Step(
                    "both wrote until the kernel took no more, then shutdown(SHUT_WR)",
                    *settled((TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_1)),
                )
            ]
            _read_to_end(client)
            steps.append(
                Step(
                    "the client read everything, to b''",
                    *settled((TcpState.CLOSING, TcpState.FIN_WAIT_2)),
                )
            )
            _read_to_end(served)
            steps.append(
                Step(
                    "the server read everything, to b''",
                    *settled((TcpState.TIME_WAIT, TcpState.TIME_WAIT)),
                )
            )
            return tuple(steps)
        finally:
            close(client)
            close(served)


def _fill(sock: socket.socket) -> None:
    """Write until the kernel takes no more: the peer's window and this send buffer are full."""
    sock.setblocking(False)
    try:
        while True:
            sock.send(bytes(_CHUNK))
    except BlockingIOError:
        pass
    sock.settimeout(LOOPBACK_TIMEOUT)


def _read_to_end(sock: socket.socket) -> None:
    while sock.recv(_CHUNK * 16):
        pass
