"""Notebook 04 (backlog and the accept queue): its exercise checker.

The exercise: the learner writes `clients_that_finish(backlog)`, how many clients complete the
handshake against `listen(backlog)` when the server never calls accept(). `check` measures the
real answer on loopback for a few backlogs (clients are started one at a time; the first whose
SYN is dropped stalls for at most STALL_TIMEOUT, so a check costs well under a second) and
compares. Rules: every socket is closed and every server joined, whatever the learner's code
does; the learner's exceptions become feedback, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from ..net.clients import close, finish_connect, start_connect
from ..net.server import LoopbackServer
from .feedback import Feedback

#: How long check() waits for one client's handshake before calling its SYN dropped. A
#: loopback handshake takes microseconds; a dropped SYN is not answered for about a second.
STALL_TIMEOUT = 0.2

#: The backlogs check() tries.
BACKLOGS = (0, 1, 3)


def count_finished_handshakes(backlog: int, *, stall_timeout: float = STALL_TIMEOUT) -> int:
    """How many clients finish the handshake with listen(backlog) and no accept(), measured.

    Clients connect one at a time; the first that is still in SYN-SENT after `stall_timeout`
    had its SYN dropped, and the count stops there (at most backlog + 3 clients are tried).
    """
    clients = []
    finished = 0
    try:
        with LoopbackServer(backlog=backlog, auto_accept=False) as server:
            for _ in range(backlog + 3):
                client = start_connect(server.address)
                clients.append(client)
                try:
                    finish_connect(client, timeout=stall_timeout)
                except TimeoutError:
                    break
                finished += 1
    finally:
        for client in clients:
            close(client)
    return finished


def _ask(clients_that_finish: Callable, backlog: int) -> tuple[int | None, str]:
    """The learner's answer for one backlog, or None and what went wrong."""
    try:
        answer = clients_that_finish(backlog)
    except Exception as error:  # the learner's bug becomes feedback
        return None, (
            f"clients_that_finish({backlog}) raised {type(error).__name__}: {error}; "
            "it must return a whole number"
        )
    if isinstance(answer, bool) or not isinstance(answer, int):
        return None, (
            f"clients_that_finish({backlog}) returned {answer!r} "
            f"({type(answer).__name__}); return a whole number (an int) such as 5"
        )
    return answer, ""


def _hint(backlog: int, answer: int, measured: int) -> str:
    said = f"listen({backlog}): you said {answer}, the kernel let {measured} finish"
    if answer == backlog:
        return (
            f"{said}. Linux calls the queue full only when it holds more than the "
            "backlog, so one more connection fits: try backlog + 1"
        )
    if answer <= 0:
        return (
            f"{said}. The kernel finishes handshakes without accept(): they wait, "
            "ESTABLISHED, in the accept queue"
        )
    if answer > measured:
        return (
            f"{said}. Client {measured + 1} stayed in SYN-SENT: the full queue dropped "
            "its SYN, so the backlog does limit the finished, unaccepted connections"
        )
    return f"{said}. Compare your formula with the measured counts for each backlog"


def check(clients_that_finish: Callable) -> Feedback:
    """Compare the learner's `clients_that_finish(backlog)` with real connects on loopback."""
    feedback = Feedback("Exercise 04: how many clients finish the handshake without accept()")
    if not callable(clients_that_finish):
        feedback.expect(False, "", "pass your function itself: check(clients_that_finish)")
        return feedback
    for backlog in BACKLOGS:
        answer, problem = _ask(clients_that_finish, backlog)
        if answer is None:
            feedback.expect(False, "", problem)
            continue
        measured = count_finished_handshakes(backlog)
        feedback.expect(
            answer == measured,
            f"listen({backlog}): you said {answer}, the kernel let {measured} finish",
            _hint(backlog, answer, measured),
        )
    return feedback
