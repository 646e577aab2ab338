"""Notebook 02's exercise: find the state of the server's side of a connection before accept().

The learner writes `server_side_state(server_address, client_address)` that returns the
TcpState the kernel holds for the server's side of that connection. `check` makes real
connections to a LoopbackServer(auto_accept=False) that never accepts: a fresh one
(ESTABLISHED) and one whose client has already closed (CLOSE-WAIT, with the client's side in
FIN-WAIT-2, so a learner who finds the client's row is caught). It compares each answer with
the kernel, and always closes everything.
"""

from __future__ import annotations

import contextlib

from ..kernel.lookup import wait_for_state
from ..kernel.proc_tcp import TcpSocketRow
from ..model.states import TcpState
from ..net.clients import close, connect
from ..net.server import LoopbackServer
from .feedback import Feedback


def _judge(answer, truth: TcpState, client_side: TcpState | None, case: str) -> tuple[bool, str]:
    """(right?, one sentence) for the learner's answer in one case."""
    name = truth.display_name
    if isinstance(answer, BaseException):
        hint = ""
        if isinstance(answer, (ValueError, IndexError)):
            hint = (
                ": no row matched? the server's side has local = server_address and "
                "remote = client_address"
            )
        return False, f"{case}: your function raised {type(answer).__name__}: {answer}{hint}"
    if answer is None:
        return False, f"{case}: it returned None; return the row's state, e.g. `return row.state`"
    if isinstance(answer, TcpSocketRow):
        return False, f"{case}: it returned the whole row; return just its state, `row.state`"
    if isinstance(answer, (list, tuple)):
        return False, (
            f"{case}: it returned a {type(answer).__name__} of {len(answer)} items; "
            "pick the one row of the server's side and return its .state"
        )
    if isinstance(answer, str):
        return False, (
            f"{case}: it returned the string {answer!r}; return a TcpState such as "
            "row.state, so it compares with TcpState members"
        )
    if not isinstance(answer, TcpState):
        return False, f"{case}: it returned {answer!r}; return a TcpState such as row.state"
    if answer is truth:
        return True, f"{case}: you found {name}, as the kernel says"
    if answer is TcpState.LISTEN:
        return False, (
            f"{case}: LISTEN is the listener's row; the connection's own row has "
            "remote = client_address"
        )
    if answer is client_side:
        return False, (
            f"{case}: you found {answer.rfc_name}, the client's side; the server's "
            f"side, {name}, has local = server_address, remote = client_address"
        )
    return False, f"{case}: you found {answer.rfc_name}, but the kernel says {name}"


def _ask(function, server_address, client_address):
    try:
        return function(server_address, client_address)
    except Exception as error:  # the learner's bug becomes feedback
        return error


def check(server_side_state) -> Feedback:
    """Run `server_side_state` against real connections nobody has accepted; say what to fix."""
    feedback = Feedback("server_side_state")
    if not callable(server_side_state):
        feedback.expect(False, "", "pass your function itself: check(server_side_state)")
        return feedback
    with (
        LoopbackServer(auto_accept=False) as server,
        contextlib.closing(connect(server.address)) as fresh,
        contextlib.closing(connect(server.address)) as leaving,
    ):
        fresh_address, leaving_address = fresh.getsockname(), leaving.getsockname()
        close(leaving)  # this client closes before anyone accepts its connection
        cases = [
            ("a fresh connection", fresh_address, TcpState.ESTABLISHED, TcpState.ESTABLISHED),
            (
                "a connection whose client has closed",
                leaving_address,
                TcpState.CLOSE_WAIT,
                TcpState.FIN_WAIT_2,
            ),
        ]
        for case, client_address, expected, client_expected in cases:
            truth = wait_for_state(server.address, client_address, state=expected)
            client_side = wait_for_state(client_address, server.address, state=client_expected)
            if truth is None:
                raise RuntimeError(f"the kernel shows no server side for {case}")
            answer = _ask(server_side_state, server.address, client_address)
            right, text = _judge(answer, truth, client_side, case)
            feedback.expect(right, text, text)
    return feedback
