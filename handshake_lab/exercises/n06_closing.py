"""Notebook 06 (closing): its exercise checker and the kernel readers its cells use.

The exercise: the learner writes `close_without_time_wait(sock)`, which closes a connected
client socket so that the client leaves no TIME_WAIT behind. `check` runs it on a real
loopback connection, lets the server close its side too, and then asks the kernel, by
addresses, what is left of the client's side. Rules: every socket is closed and the server
joined whatever the learner's code does; the learner's exceptions become feedback.

`state_by_address` finds a connection no process holds any more (a closed client in
FIN_WAIT2 or TIME_WAIT); `time_wait_seconds_left` reads the TIME_WAIT timer the kernel
prints in /proc/net/tcp, which shows how long TIME_WAIT really lasts.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable

from ..loopback import LoopbackServer, close, connect
from ..procnet import find_rows, tcp_sockets
from ..sockdiag import SockDiag
from ..states import TcpState
from ..timeouts import SHORT_TIMEOUT
from .feedback import Feedback

Endpoint = tuple[str, int]
_TIME_WAIT_TIMER = 3  # the "tr" code of a TIME_WAIT row (net/ipv4/tcp_ipv4.c)


@functools.lru_cache(maxsize=1)
def _sock_diag_available() -> bool:
    return SockDiag.available()


def _lookup(local: Endpoint, remote: Endpoint) -> TcpState | None:
    if _sock_diag_available():
        with SockDiag() as diag:
            found = diag.lookup(local, remote)
        return found[0] if found else None
    rows = find_rows(tcp_sockets(local[1]), local, remote)
    return rows[0].state if rows else None


def state_by_address(local: Endpoint, remote: Endpoint, *, wait_for: TcpState | None = None,
                     wait_until_gone: bool = False,
                     timeout: float = SHORT_TIMEOUT) -> TcpState | None:
    """The kernel's state of the connection local -> remote; None if it has none.

    With `wait_for` (a state) or `wait_until_gone`, poll every millisecond, for at most
    `timeout` s, until the kernel shows that: a FIN and its ACK cross loopback in
    microseconds, but possibly on another core. Returns the last state seen, so the
    caller's assert shows what the kernel said rather than hanging or raising.
    """
    local, remote = tuple(local[:2]), tuple(remote[:2])
    deadline = time.monotonic() + timeout
    state = _lookup(local, remote)

    def waiting() -> bool:
        if wait_until_gone:
            return state is not None
        return wait_for is not None and state is not wait_for

    while waiting() and time.monotonic() < deadline:
        time.sleep(0.001)
        state = _lookup(local, remote)
    return state


def time_wait_seconds_left(local: Endpoint, remote: Endpoint,
                           proc_root: str = "/proc") -> float | None:
    """Seconds until the kernel's TIME_WAIT timer of local -> remote fires; None if no such row.

    /proc/net/tcp prints a row's timer as "tr:when", `when` in clock ticks (USER_HZ) in hex.
    """
    rows = find_rows(tcp_sockets(local[1]), tuple(local[:2]), tuple(remote[:2]))
    if not rows or rows[0].state is not TcpState.TIME_WAIT:
        return None
    wanted = (f":{local[1]:04X}", f":{remote[1]:04X}")
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc_root, "net", name), encoding="ascii") as file:
                lines = file.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if (fields[1].endswith(wanted[0]) and fields[2].endswith(wanted[1])
                    and int(fields[3], 16) == TcpState.TIME_WAIT.code):
                timer, when = fields[5].split(":")
                if int(timer, 16) == _TIME_WAIT_TIMER:
                    return int(when, 16) / ticks_per_second
    return None


def _run_learner(close_without_time_wait: Callable, client: socket.socket) -> str:
    try:
        close_without_time_wait(client)
    except Exception as error:  # the learner's bug becomes feedback
        return f"close_without_time_wait(sock) raised {type(error).__name__}: {error}"
    return ""


def check(close_without_time_wait: Callable) -> Feedback:
    """Run the learner's function on a real connection; say what the kernel has left."""
    feedback = Feedback("Exercise 06: close the client without leaving TIME_WAIT")
    if not callable(close_without_time_wait):
        feedback.expect(False, "", "pass your function itself: check(close_without_time_wait)")
        return feedback
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            accepted = server.accept()
            client_end = client.getsockname()[:2]
            problem = _run_learner(close_without_time_wait, client)
            still_open = client.fileno() >= 0
        finally:
            close(client)
        if problem:
            feedback.expect(False, "", problem)
            return feedback
        feedback.expect(not still_open, "your function closed the socket",
                        "the socket was still open after your function: it must call close()")
        try:
            accepted.recv(100)
            reset_seen = False
        except ConnectionResetError:
            reset_seen = True
        close(accepted)  # the server closes its side too, as a real server would
        left = state_by_address(client_end, server.address, wait_for=TcpState.TIME_WAIT,
                                timeout=0.05)
    if left is TcpState.TIME_WAIT:
        feedback.expect(False, "", "the client is in TIME-WAIT: a plain close() by the side "
                        "that closes first ends there; set SO_LINGER to (1, 0) before close()")
    else:
        feedback.expect(left is None, "the kernel has nothing left of the client's side: "
                        "no TIME-WAIT",
                        f"the kernel still shows the client in {left}: close it with "
                        "SO_LINGER (1, 0) so it sends RST")
    feedback.expect(reset_seen, "the server's recv() raised ConnectionResetError: the client "
                    "sent RST, not FIN",
                    "the server saw an orderly FIN, not a reset: SO_LINGER (1, 0) makes "
                    "close() send RST")
    return feedback
