"""Notebook 06's exercise: close a connection gracefully, judged by the kernel and the wire.

The learner writes ``finish(sock)``: ``sock`` is a connected client that has sent its whole
request; the function must end the connection so that nothing is lost, and return every byte
of the server's reply. The server here is like many real ones: it reads the request until
``recv()`` returns b'' (the client's FIN), then sends a reply of many segments, then closes.
`check` runs the learner's function against it on loopback and asks the kernel:

- did the server get the whole request and then the client's FIN, in CLOSE-WAIT?
- did the learner return the whole reply, and was the socket closed?
- did any reset reach the server (its socket's error, its failed calls) and, where this process
  may capture, did a RST cross the wire?
- where did the client's side end (TIME-WAIT is the normal end for the side that closes first)?

Rules: every socket is closed and the server thread joined whatever the learner's code does;
the learner's exceptions become feedback; hints come from ``attempts.Attempts`` and never show
the code that passes.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..capture.experiment import conversation_finished
from ..capture.sniffer import sniffer_or_why_not
from ..kernel.lookup import connection_state, socket_state
from ..model.states import TcpState
from ..net.background import Background
from ..net.clients import close, connect, send
from ..net.server import LoopbackServer
from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, poll_until
from .attempts import Attempts
from .feedback import Feedback

__all__ = ["ATTEMPTS", "REPLY_BYTES", "REQUEST", "check"]

#: The learner's tries so far, kept between runs of the exercise cell.
ATTEMPTS = Attempts()

REQUEST = b"GET /report\n"
#: Many segments' worth: more than one recv() returns.
REPLY_BYTES = 300_000


@dataclass
class _ServerSide:
    """What the server saw; filled in by its thread."""

    request: bytes = b""
    got_fin: bool = False
    state_at_fin: TcpState | None = None
    error_before_fin: str = ""  # e.g. "ConnectionResetError" if a reset came first
    reset_evidence: str = ""  # the failed call or socket error that shows a reset arrived
    final_state: TcpState | None = None


def _error_name(error: OSError) -> str:
    code = errno.errorcode.get(error.errno or 0)
    return f"{type(error).__name__} ({code})" if code else type(error).__name__


def _serve(conn: socket.socket, seen: _ServerSide) -> None:
    """Read the request to EOF, reply, shut down; note every sign of a reset."""
    conn.settimeout(LOOPBACK_TIMEOUT)  # longer than the client's: the learner times out first
    try:
        while chunk := conn.recv(65536):
            seen.request += chunk
    except OSError as error:
        seen.error_before_fin = _error_name(error)
        return
    seen.got_fin, seen.state_at_fin = True, socket_state(conn)
    for call, action in (
        ("sending its reply", lambda: conn.sendall(bytes(REPLY_BYTES))),
        ("sending its FIN", lambda: conn.shutdown(socket.SHUT_WR)),
    ):
        try:
            action()
        except OSError as error:
            seen.reset_evidence = seen.reset_evidence or f"{call} failed with {_error_name(error)}"
    # Wait for the client's ACK of our FIN (LAST-ACK -> CLOSED) or for a reset (also CLOSED).
    poll_until(lambda: socket_state(conn) is TcpState.CLOSED, timeout=SHORT_TIMEOUT)
    seen.final_state = socket_state(conn)
    pending = conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if pending and not seen.reset_evidence:
        seen.reset_evidence = f"its socket's error was {errno.errorcode.get(pending, pending)}"


def _run_learner(finish: Callable, client: socket.socket) -> tuple[object, BaseException | None]:
    try:
        return finish(client), None
    except Exception as error:  # the learner's bug becomes feedback
        return None, error


_DEADLOCK = [
    "your recv() waited {timeout} s and got nothing, and the server was waiting too: "
    "which of you was supposed to act next?",
    "this server reads the request until its recv() returns b'', and only then replies: "
    "it needs a sign that your request is complete, while your socket stays open for reading",
    "read what socket.shutdown() does in the Python documentation: it ends one direction of "
    "a connection",
]
_RESET_FIRST = [
    "the server's recv() raised {error} before your request was complete: your close sent "
    "a reset (RST), not a FIN. A reset throws away whatever is still in flight, in both "
    "directions, so the server never replied",
    "SO_LINGER (1, 0) is for aborting a connection; a graceful close sends a FIN: "
    "remove the SO_LINGER option",
]
_CLOSED_TOO_EARLY = [
    "the server's reply reached a socket you had already closed, so your kernel answered "
    "it with a reset (RST) and the reply was lost",
    "after you have said you are done sending, the connection still carries the server's "
    "reply towards you: read it before you close",
    "keep reading until recv() says the server has finished: what does recv() return then?",
]
_PARTIAL = [
    "you returned {got:,} of the reply's {total:,} bytes, and closing with the rest unread "
    "made your kernel send a reset (RST)",
    "one recv() returns what has arrived so far, at most as many bytes as you ask for: a "
    "reply of this size takes many",
    "call recv() in a loop, until it returns the value that means the server closed its side",
]
_READ_SIDE_SHUT = [
    "the server's reply came back as a reset: your own kernel answered it with RST (your "
    "recv() then returns b'' or raises ConnectionResetError). Did you shut down more than "
    "your sending direction?",
    "on Linux, data that arrives after the reading direction was shut down (SHUT_RD or "
    "SHUT_RDWR) is answered with a reset: shut down only the direction you have finished with",
]
_LEFT_OPEN = [
    "your function returned with the socket still open (the check closed it for you): a "
    "program that forgets leaks one file descriptor per connection",
    "the last step of a graceful close gives the socket back: it is not done until then",
]


def _judge_reply(
    feedback: Feedback, attempts: Attempts, returned: object, reset_seen: bool
) -> None:
    """One line about what the learner's function returned, with a hint when it is not all."""
    got = len(returned) if isinstance(returned, (bytes, bytearray)) else None
    if returned is not None and got is None:
        feedback.expect(
            False, "", f"finish returned {type(returned).__name__}: return the bytes you read"
        )
    elif got == REPLY_BYTES and bytes(returned) == bytes(REPLY_BYTES):
        feedback.expect(True, f"you returned the whole reply, {REPLY_BYTES:,} bytes", "")
    elif got:
        hint = attempts.hint("partial", _PARTIAL).format(got=got, total=REPLY_BYTES)
        feedback.expect(False, "", hint)
    elif returned == b"" and reset_seen:
        feedback.expect(False, "", attempts.hint("read-side-shut", _READ_SIDE_SHUT))
    elif reset_seen:
        feedback.expect(False, "", attempts.hint("closed-too-early", _CLOSED_TOO_EARLY))
    else:
        feedback.expect(False, "", "finish(sock) returned nothing: return the bytes you read")


def check(finish: Callable, attempts: Attempts | None = None) -> Feedback:
    """Run ``finish(sock) -> reply bytes`` on a real connection; the kernel judges the close."""
    attempts = ATTEMPTS if attempts is None else attempts
    feedback = Feedback("Exercise 06: a graceful close")
    if not callable(finish):
        feedback.expect(False, "", "pass your function itself: check(finish)")
        return feedback
    seen = _ServerSide()
    with LoopbackServer(auto_accept=False) as server, contextlib.ExitStack() as stack:
        sniffer, why_not = sniffer_or_why_not(stack, server.address[1])
        client = connect(server.address, timeout=SHORT_TIMEOUT)
        try:
            served = stack.enter_context(server.accept())
            client_end = client.getsockname()[:2]
            send(client, REQUEST, timeout=SHORT_TIMEOUT)
            client.settimeout(SHORT_TIMEOUT)  # a learner's recv() never waits longer
            with Background("exercise 06 server") as background:
                background.start(_serve, served, seen, name="exercise-06-server")
                returned, error = _run_learner(finish, client)
                fin_before_error = seen.got_fin
                left_open = client.fileno() >= 0
                close(client)  # unblocks the server if the learner's code did not close
        finally:
            close(client)
        client_left = connection_state(client_end, server.address)
        resets = []
        if sniffer is not None:
            sniffer.wait_for(
                lambda seen: conversation_finished(seen) or any(s.has("RST") for s in seen),
                SHORT_TIMEOUT,
            )
            resets = [s for s in sniffer.segments if s.has("RST")]
    reset_seen = bool(seen.error_before_fin or seen.reset_evidence or resets)

    if error is not None:
        if isinstance(error, TimeoutError) and not fin_before_error:
            hint = attempts.hint("deadlock", _DEADLOCK).format(timeout=SHORT_TIMEOUT)
        elif isinstance(error, ConnectionResetError):
            hint = attempts.hint("read-side-shut", _READ_SIDE_SHUT)
        else:
            hint = "read the error above and fix that line first"
        feedback.expect(False, "", f"finish(sock) raised {type(error).__name__}: {error}; {hint}")
    elif seen.error_before_fin:
        hint = attempts.hint("reset-first", _RESET_FIRST).format(error=seen.error_before_fin)
        feedback.expect(False, "", hint)
    else:
        feedback.expect(
            seen.got_fin and seen.request == REQUEST and seen.state_at_fin is TcpState.CLOSE_WAIT,
            "the server read your whole request, then recv() returned b'' (your FIN) while its "
            "side was CLOSE-WAIT: it knew you had finished and could still send",
            f"the server's side was {seen.state_at_fin} when its recv() returned b'', after "
            f"{len(seen.request)} bytes of the {len(REQUEST)}-byte request",
        )
        _judge_reply(feedback, attempts, returned, reset_seen)

    wire = ""
    if sniffer is not None:
        wire = "; on the wire: " + (
            f"a RST from {'your side' if resets[0].src[1] == client_end[1] else 'the server'}"
            if resets
            else "no RST was captured"
        )
    feedback.expect(
        not reset_seen,
        "no reset reached the server: its calls succeeded and its socket had no error"
        + (wire if sniffer is not None else f" (packets not captured: {why_not})"),
        "the server's kernel got a reset: "
        + (seen.reset_evidence or seen.error_before_fin or "see the wire")
        + wire,
    )
    if left_open:
        feedback.expect(False, "", attempts.hint("left-open", _LEFT_OPEN))
    elif not reset_seen:
        feedback.expect(
            client_left is TcpState.TIME_WAIT,
            "your side ended in TIME-WAIT, the normal end for the side that closes first",
            f"your side of the connection ended in {client_left}, not TIME-WAIT",
        )
    return feedback
