"""Notebook 07's exercise: the learner writes ``on_ready(key, selector)``, the body of a
``selectors`` echo server's loop, and ``check`` runs it in a real SelectorEchoServer.

The check sends real clients to it, in order: one client (is its message echoed?), a second
client while a first one sits silent (does one quiet connection block everyone?), then a short
load test (do all of them get an answer?). Afterwards it looks at what the server was left with:
did ``on_ready`` raise, and did it unregister and close every connection whose client left?
The clients close with RST (SO_LINGER 0, so no TIME_WAIT is left behind), which a server sees
as ConnectionResetError from recv(). Every wait is bounded; the server is always closed.
"""

from __future__ import annotations

import contextlib
import socket
import traceback

from ..net.clients import set_linger_zero
from ..net.echo_servers import CONNECTION, LISTENER, SelectorEchoServer
from ..net.load_test import echo_round_trip, measure_connections_per_second
from ..timeouts import SHORT_TIMEOUT, poll_until
from .feedback import Feedback

__all__ = ["CHECK_CONNECTIONS", "check"]

#: How long a check's client waits for its echo: loopback answers in microseconds.
CLIENT_TIMEOUT = 1.0
#: The short load test's size: enough to see every connection answered, quick to run.
CHECK_CONNECTIONS = 200

_REGISTER = (
    f"selector.register(connection, selectors.EVENT_READ, {CONNECTION!r}) after "
    "connection.setblocking(False)"
)


def _round_trip(address, message: bytes) -> tuple[bytes | None, str]:
    """(what came back, '') or (None, what went wrong)."""
    try:
        return echo_round_trip(address, message, timeout=CLIENT_TIMEOUT), ""
    except TimeoutError:
        return None, "timeout"
    except OSError as error:
        return None, f"{type(error).__name__}: {error}"


def _explain_error(error: BaseException, where: str) -> str:
    name = f"{type(error).__name__}: {error}"
    if isinstance(error, ConnectionResetError):
        return (
            f"on_ready raised {name} (on {where}): these clients close with RST (SO_LINGER "
            "0, so no TIME_WAIT is left); treat ConnectionResetError from recv() like b'': "
            "selector.unregister(sock), then sock.close()"
        )
    if isinstance(error, BlockingIOError):
        return (
            f"on_ready raised {name} (on {where}): call accept() or recv() only on the "
            "socket whose key is ready (key.fileobj), once per call"
        )
    if isinstance(error, (KeyError, ValueError)) and "register" in str(error).lower():
        return (
            f"on_ready raised {type(error).__name__} (on {where}) saying a socket is already "
            "registered: a closed socket's number is reused by the next accept(), so call "
            "selector.unregister(sock) before sock.close()"
        )
    return f"on_ready raised {name} (on {where}); the server's loop stopped there: fix that line"


def _why_no_echo(reply: bytes | None, problem: str, message: bytes) -> str:
    if reply == b"" or problem.startswith(("ConnectionResetError", "BrokenPipeError")):
        return (
            "the server closed the connection without answering: after accept(), keep the "
            f"connection in the selector with {_REGISTER}; a socket kept nowhere is closed "
            "when on_ready returns"
        )
    if reply is not None:
        return f"sent {message!r}, got back {reply!r}: send back exactly the bytes recv() gave"
    if problem == "timeout":
        return (
            f"no answer within {CLIENT_TIMEOUT:g} s: when key.data == {CONNECTION!r}, "
            "recv() from key.fileobj and send the bytes back"
        )
    return f"the client failed: {problem}"


def check(on_ready) -> Feedback:
    """Run ``on_ready`` as the loop body of a real selectors echo server and load-test it."""
    feedback = Feedback("Your selectors echo server")
    if not callable(on_ready):
        feedback.expect(False, "", "on_ready must be a function: def on_ready(key, selector): ...")
        return feedback
    failures: list[str] = []  # what the listener or a connection was doing when on_ready raised

    def guarded(key, selector) -> None:
        try:
            on_ready(key, selector)
        except BaseException:
            failures.append("the listener" if key.data == LISTENER else "a connection")
            raise

    stuck = ""
    server = SelectorEchoServer(on_ready=guarded, raise_errors=False)
    try:
        with server:
            _run_clients(server, feedback)
            # Let the loop see the last clients leave before asking what it kept.
            poll_until(
                lambda: (
                    not (feedback.passed and server.connection_count() > 0 and not server.errors)
                ),
                timeout=SHORT_TIMEOUT,
                interval=0.005,
            )
    except RuntimeError as error:  # on_ready blocked and the loop could not be stopped
        stuck = str(error)
    if server.errors:
        error = server.errors[0]
        feedback.expect(False, "", _explain_error(error, failures[0] if failures else "a socket"))
        # The traceback's frames hold the sockets on_ready had in hand: let them be closed now.
        traceback.clear_frames(error.__traceback__)
        server.errors.clear()
        return feedback
    if stuck:
        feedback.expect(
            False,
            "",
            "on_ready never returned, so the server could not stop: "
            "never wait in it (no loops around recv(), no blocking calls)",
        )
        return feedback
    if all(ok for ok, _ in feedback.lines):
        feedback.expect(
            server.closed_but_registered == 0,
            "every connection was unregistered before it was closed",
            f"{server.closed_but_registered} connections were closed but left in the selector: "
            "call selector.unregister(sock) before sock.close()",
        )
        feedback.expect(
            server.still_registered == 0,
            "every connection whose client left was unregistered and closed",
            f"{server.still_registered} connections stayed open after their clients left: on b'' "
            "or ConnectionResetError, selector.unregister(sock) and sock.close()",
        )
    return feedback


def _run_clients(server: SelectorEchoServer, feedback: Feedback) -> None:
    reply, problem = _round_trip(server.address, b"hello")
    if not feedback.expect(
        reply == b"hello",
        "one client: its message came back",
        "one client: " + _why_no_echo(reply, problem, b"hello"),
    ):
        return
    with socket.create_connection(server.address, timeout=CLIENT_TIMEOUT) as silent:
        reply, problem = _round_trip(server.address, b"second")
        with contextlib.suppress(OSError):
            set_linger_zero(silent)
    if not feedback.expect(
        reply == b"second",
        "two clients: the second was answered while the first sat silent",
        "two clients: the second got no answer while the first sat silent, so on_ready waits "
        "on one connection; recv() only from key.fileobj when its key is ready, and return"
        if problem == "timeout"
        else "two clients: " + _why_no_echo(reply, problem, b"second"),
    ):
        return
    result = measure_connections_per_second(
        lambda: contextlib.nullcontext(server),
        CHECK_CONNECTIONS,
        4,
        timeout=CLIENT_TIMEOUT,
        max_seconds=10.0,
    )
    feedback.expect(
        result.answered == CHECK_CONNECTIONS,
        f"load test: all {CHECK_CONNECTIONS} short connections from 4 client threads were answered",
        f"load test: {result.answered} of {CHECK_CONNECTIONS} connections were answered; first "
        f"problem: {result.errors[0] if result.errors else 'none reported'}",
    )
