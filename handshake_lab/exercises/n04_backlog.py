"""Notebook 04 (backlog and the accept queue): its exercise checker.

The exercise: the learner writes `fill_accept_queue(address, backlog)`, which connects real
client sockets to a server listening with listen(backlog) that never calls accept(), until the
server's accept queue is exactly full, and returns the connected client sockets. `check` runs
it against a fresh server for a few backlogs and lets the kernel judge: the listener's accept
queue length (TCP_INFO), whether every returned socket is connected, and whether one more
client's SYN is then dropped (that client still in SYN-SENT after PROBE_TIMEOUT).

Hints: each kind of mistake has hints that get more specific each time `check` sees it again
(`reset_hints` starts over); they say what the kernel measured and where to look, never the
code. Rules: every socket is closed and every server joined, whatever the learner's code does;
while it runs, sockets it makes without a timeout get CONNECT_TIMEOUT, so a connect() whose
SYN the kernel drops fails quickly instead of waiting for the kernel to give up; the learner's
exceptions become feedback, never a traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..kernel.lookup import socket_state
from ..kernel.tcp_info import accept_queue
from ..model.states import TcpState
from ..net.clients import close, finish_connect, start_connect
from ..net.server import LoopbackServer
from ..timeouts import SHORT_TIMEOUT, poll_until
from .attempts import Attempts
from .feedback import Feedback

#: The backlogs check() tries.
BACKLOGS = (0, 2)

#: A connect() the learner makes without a timeout fails after this long during a check. A
#: loopback handshake takes microseconds; a dropped SYN is not resent for about a second.
CONNECT_TIMEOUT = 0.5

#: How long the checker's extra client waits before its SYN is called dropped.
PROBE_TIMEOUT = 0.2

# Each mistake's hints, least to most specific. No hint holds the solution's code.
HINTS = {
    "not full": (
        "Your clients did not fill the queue: after your function returned, one more client "
        "still finished its handshake.",
        "Section 1 measured how many finished connections listen(2) holds. Does the number of "
        "connections you open grow with the backlog in the same way?",
        "Linux calls the accept queue full only when it holds more than the backlog "
        "(sk_acceptq_is_full() compares with >). Open connections until that is true, no more.",
    ),
    "blocked": (
        "One of your connect() calls did not return within {timeout:g} s: the kernel dropped "
        "its SYN, because the queue was already full.",
        "For listen({backlog}) the queue was full after {length} connection(s); your function "
        "tried one more. Count the connections you open, for each backlog.",
        "A connect() against a full queue waits in SYN-SENT: stop as soon as the queue holds "
        "more than the backlog, and return the clients you have.",
    ),
    "not connected": (
        "{count} of the sockets you returned are not connected to the server (the kernel "
        "reports them {states}).",
        "A new socket is CLOSED until connect() makes the handshake; a non-blocking connect "
        "that is still in SYN-SENT has not finished it either: return only clients whose "
        "connect() returned.",
        "Make each client a socket.socket(), connect it to `address` (a blocking connect() "
        "returns once the kernel finished the handshake), and keep it in your list.",
    ),
    "closed": (
        "{count} of the sockets you returned are already closed: the checker reads the queue "
        "while your clients are still connected.",
        "A `with` block closes its socket when the block ends, and so does close(): keep each "
        "client open and in your list after your function returns.",
        "Do not close the clients at all: the checker closes every socket you return.",
    ),
    "not returned": (
        "You returned {count} socket(s) for the {length} connection(s) in the queue: return "
        "every client you connected.",
        "Put each connected client in one list and return that list at the end.",
        "The checker needs the sockets themselves (to close them afterwards): return a list of "
        "the client sockets, one per connection you made.",
    ),
    "wrong type": (
        "fill_accept_queue returned {returned}: it must return a list of client sockets.",
        "Collect the client sockets in a list as you connect them, and end with a return "
        "statement that returns the list.",
        "Each item must be a socket.socket object, connected to `address`.",
    ),
    "raised": (
        "fill_accept_queue({backlog}) raised {error}.",
        "Read the error's last line: it names what went wrong and on which line.",
        "Try your function's body in a cell of its own, against a LoopbackServer, until it "
        "runs without an error.",
    ),
}

#: The learner's tries so far, kept between runs of the exercise cell.
ATTEMPTS = Attempts()


def reset_hints() -> None:
    """Start the hints over, as for a learner who has not tried yet."""
    ATTEMPTS.reset()


def one_more_syn_dropped(address) -> bool:
    """Start one more client; True if it is still in SYN-SENT after PROBE_TIMEOUT (dropped)."""
    probe = start_connect(address)
    try:
        finish_connect(probe, timeout=PROBE_TIMEOUT)
    except TimeoutError:
        return socket_state(probe) is TcpState.SYN_SENT
    finally:
        close(probe)
    return False


def _run_learner(fill_accept_queue: Callable, address, backlog: int):
    """The learner's result, or the exception it raised; sockets without a timeout get one."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(CONNECT_TIMEOUT)
    try:
        return fill_accept_queue(address, backlog), None
    except Exception as error:  # the learner's bug becomes feedback
        error.__traceback__ = None  # lets go of the frames, and of the sockets they held
        return None, error
    finally:
        socket.setdefaulttimeout(previous)


def _judge(fill_accept_queue: Callable, backlog: int) -> tuple[str, str, dict]:
    """(what the kernel measured, mistake or "", facts for its hint) for one backlog.

    Every socket the learner returned is closed before this returns.
    """
    returned: object = None
    with LoopbackServer(backlog=backlog, auto_accept=False) as server:
        try:
            returned, error = _run_learner(fill_accept_queue, server.address, backlog)
            if error is not None:
                length = accept_queue(server.listener).length
                said = f"listen({backlog}): the kernel's accept queue held {length}"
                if isinstance(error, TimeoutError):
                    facts = {"timeout": CONNECT_TIMEOUT, "length": length, "backlog": backlog}
                    return said, "blocked", facts
                error_text = f"{type(error).__name__}: {error}"
                return said, "raised", {"backlog": backlog, "error": error_text}
            if not isinstance(returned, (list, tuple)) or not all(
                isinstance(sock, socket.socket) for sock in returned
            ):
                shown = repr(returned)[:60]
                said = f"listen({backlog}): no list of sockets came back"
                return said, "wrong type", {"returned": shown}
            closed = sum(sock.fileno() < 0 for sock in returned)
            states = [socket_state(sock) for sock in returned if sock.fileno() >= 0]
            connected = states.count(TcpState.ESTABLISHED)
            # The server's kernel queues a connection when it has the client's final ACK, a
            # moment after the client's connect() returned: wait for those it has seen.
            poll_until(
                lambda: accept_queue(server.listener).length >= connected, timeout=SHORT_TIMEOUT
            )
            length = accept_queue(server.listener).length
            said = f"listen({backlog}): the kernel's accept queue held {length}"
            if closed:
                return said, "closed", {"count": closed}
            unconnected = sorted({s.display_name for s in states if s is not TcpState.ESTABLISHED})
            if unconnected:
                count = len(states) - connected
                return said, "not connected", {"count": count, "states": ", ".join(unconnected)}
            if not one_more_syn_dropped(server.address):
                return f"{said}; one more client still got in", "not full", {"length": length}
            if len(returned) != length:
                return said, "not returned", {"length": length, "count": len(returned)}
            return f"{said}, full: one more client's SYN was dropped (SYN-SENT)", "", {}
        finally:
            if isinstance(returned, (list, tuple)):
                for sock in returned:
                    if isinstance(sock, socket.socket):
                        sock.close()


def check(fill_accept_queue: Callable) -> Feedback:
    """Run the learner's `fill_accept_queue(address, backlog)` and let the kernel judge it."""
    feedback = Feedback("Exercise 04: fill the accept queue, exactly")
    if not callable(fill_accept_queue):
        feedback.expect(False, "", "pass your function itself: check(fill_accept_queue)")
        return feedback
    hints: dict[str, str] = {}  # one rung per mistake per check, however many backlogs hit it
    for backlog in BACKLOGS:
        measured, mistake, facts = _judge(fill_accept_queue, backlog)
        if mistake and mistake not in hints:
            ladder = [hint.format(**facts) for hint in HINTS[mistake]]
            hints[mistake] = ATTEMPTS.hint(mistake, ladder)
        feedback.expect(not mistake, measured, f"{measured}. {hints.get(mistake, '')}")
    return feedback
