"""Notebook 06 (closing): its exercise checker.

The exercise: the learner writes `close_without_time_wait(sock)`, which closes a connected
client socket so that the client leaves no TIME_WAIT behind. `check` runs it on a real
loopback connection, lets the server close its side too, and then asks the kernel, by
addresses, what is left of the client's side. Rules: every socket is closed and the server
joined whatever the learner's code does; the learner's exceptions become feedback.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..kernel.lookup import wait_for_state
from ..model.states import TcpState
from ..net.clients import close, connect
from ..net.server import LoopbackServer
from .feedback import Feedback


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
        feedback.expect(
            not still_open,
            "your function closed the socket",
            "the socket was still open after your function: it must call close()",
        )
        try:
            accepted.recv(100)
            reset_seen = False
        except ConnectionResetError:
            reset_seen = True
        close(accepted)  # the server closes its side too, as a real server would
        left = wait_for_state(client_end, server.address, state=TcpState.TIME_WAIT, timeout=0.05)
    if left is TcpState.TIME_WAIT:
        feedback.expect(
            False,
            "",
            "the client is in TIME-WAIT: a plain close() by the side "
            "that closes first ends there; set SO_LINGER to (1, 0) before close()",
        )
    else:
        feedback.expect(
            left is None,
            "the kernel has nothing left of the client's side: no TIME-WAIT",
            f"the kernel still shows the client in {left}: close it with "
            "SO_LINGER (1, 0) so it sends RST",
        )
    feedback.expect(
        reset_seen,
        "the server's recv() raised ConnectionResetError: the client sent RST, not FIN",
        "the server saw an orderly FIN, not a reset: SO_LINGER (1, 0) makes close() send RST",
    )
    return feedback
